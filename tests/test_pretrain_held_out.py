"""Held-out evaluation while pretraining (issue 18, first part): `nvlm pretrain --eval-data
SHARDS` evaluates every `train.eval_every` steps and after the last one, logging what
`nvlm eval --task mlm` reports; ELECTRA's evaluation draws masks without changing the run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import checkpoint_values, error_line, invoke, json_of, ok

TINY = ["--preset", "cpu-fp32", "--set", "model.size=tiny", "--set", "train.log_every=1"]


def pretrain(model: str, shards: Path, out: Path, *args: str, steps: int = 6):
    return ok(invoke("pretrain", "--model", model, "--data", shards, "--out", out,
                     "--steps", steps, *TINY, *args))  # fmt: skip


def held_out(run: Path) -> list[dict]:
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return [line for line in lines if any(k.startswith("eval_") for k in line)]


@pytest.mark.parametrize(("model", "figure"), [("bert", "mlm_loss"), ("electra", "disc_loss")])
def test_held_out_figures_are_what_eval_reports_and_change_nothing(
    model, figure, bert_shards, electra_shards, tmp_path
):
    shards = bert_shards if model == "bert" else electra_shards
    pretrain(model, shards, tmp_path / "plain")
    pretrain(model, shards, tmp_path / "run", "--eval-data", str(shards),
             "--set", "train.eval_every=3")  # fmt: skip
    lines = held_out(tmp_path / "run")
    assert [line["step"] for line in lines] == [3, 6]
    assert lines[-1]["units"][f"eval_{figure}"] == "nats"
    # The last figures are `nvlm eval --task mlm` of the final checkpoint (same batch, same
    # precision, ELECTRA's masks drawn from the same seed state).
    ev = json_of(invoke("eval", "--model", model, "--task", "mlm", "--init", tmp_path / "run",
                        "--data", shards, "--json"))  # fmt: skip
    assert lines[-1][f"eval_{figure}"] == pytest.approx(ev[figure], rel=1e-6)
    # Evaluating changed nothing the run trains with: the weights are those of a plain run.
    plain, evaluated = checkpoint_values(tmp_path / "plain"), checkpoint_values(tmp_path / "run")
    for name in plain:
        np.testing.assert_array_equal(evaluated[name], plain[name], err_msg=name)


def test_eval_data_alone_evaluates_after_the_last_step(bert_shards, tmp_path):
    pretrain("bert", bert_shards, tmp_path / "run", "--eval-data", str(bert_shards), steps=4)
    assert [line["step"] for line in held_out(tmp_path / "run")] == [4]


def test_held_out_options_that_cannot_work_are_one_line(bert_shards, electra_shards, txl_corpus,
                                                         tmp_path):  # fmt: skip
    result = invoke("pretrain", "--model", "bert", "--data", bert_shards, "--out",
                    tmp_path / "a", *TINY, "--set", "train.eval_every=2")  # fmt: skip
    assert error_line(result) == (
        "nvlm: error: train.eval_every evaluates held-out shards: pass --eval-data SHARDS"
    )
    result = invoke("pretrain", "--model", "transformer-xl", "--data", txl_corpus, "--out",
                    tmp_path / "b", "--eval-data", bert_shards)  # fmt: skip
    # Transformer-XL evaluates an nvlm data lm directory (tests/test_txl_held_out.py).
    assert error_line(result) == (
        f"nvlm: error: {bert_shards} holds 'pretraining' data, not a language-modelling corpus "
        "(make one with nvlm data lm --train ... --out DIR)"
    )
    result = invoke("pretrain", "--model", "bert", "--data", bert_shards, "--out",
                    tmp_path / "c", *TINY, "--eval-data", electra_shards)  # fmt: skip
    assert result.exit_code == 2 and "electra" in error_line(result)
    assert not any((tmp_path / name).exists() for name in "abc")


# --- shared among the ranks ------------------------------------------------------------------


class _OneRank:
    """Rank `rank` of `size`: its allreduce returns its own sums (the test adds the ranks')."""

    def __init__(self, rank: int, size: int) -> None:
        self.rank, self.size = rank, size

    def allreduce_sum(self, values, name):
        return values


def test_shared_evaluation_deals_every_batch_to_exactly_one_rank():
    from nvlm.data.examples import ArrayPart
    from nvlm.models.encoder.shard_eval import sum_over_parts

    # Batches of 3: 3, 3, 1 | 3, 2 | 3, 3, 3 rows (parts of 7, 5 and 9 rows).
    parts = [ArrayPart({"x": np.arange(n)}) for n in (7, 5, 9)]

    def step(batch):
        return {"sequences": len(batch["x"]), "total": int(np.sum(batch["x"].numpy()))}

    whole, _ = sum_over_parts(step, parts, 3, 21)
    shares = [sum_over_parts(step, parts, 3, 21, world=_OneRank(r, 3),
                             keys=("sequences", "total"))[0] for r in range(3)]  # fmt: skip
    assert [s["sequences"] for s in shares] == [9, 8, 4]  # batches 0,3,6 / 1,4,7 / 2,5
    assert {k: sum(s[k] for s in shares) for k in whole} == whole


@pytest.mark.slow
@pytest.mark.horovod
@pytest.mark.parametrize("model", ["electra"])  # the keyed masks; BERT's sums are the same code
def test_two_ranks_sharing_the_evaluation_report_the_figures_of_one(
    model, bert_shards, electra_shards, tmp_path
):
    pytest.importorskip("horovod.tensorflow", reason="Horovod is built by `make horovod`")
    shards = bert_shards if model == "bert" else electra_shards
    common = ["--eval-data", str(shards), "--set", "train.eval_every=2", "--set",
              "model.dropout=0", "--set", "model.attention_dropout=0"]  # fmt: skip
    pretrain(model, shards, tmp_path / "root", *common, "--gpus", "2", "--launcher",
             "horovodrun", "--set", "train.eval_shared=false")  # fmt: skip
    pretrain(model, shards, tmp_path / "shared", *common, "--gpus", "2", "--launcher",
             "horovodrun")  # fmt: skip
    root, shared = held_out(tmp_path / "root"), held_out(tmp_path / "shared")
    assert [line["step"] for line in shared] == [2, 4, 6]
    for a, b in zip(root, shared, strict=True):
        for key in a:
            if key.startswith("eval_"):
                assert b[key] == pytest.approx(a[key], rel=1e-6, abs=1e-9), key
