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
