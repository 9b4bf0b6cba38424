"""SQuAD dev figures while fine-tuning (issue 18): `nvlm finetune --task squad --eval-data DEV
--set train.eval_every=N` logs, every N steps and after the last one, the EM/F1 that
`nvlm eval --task squad` gives the checkpoint (BERT's span head, ELECTRA's joint head)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import error_line, invoke, json_of, ok

FIXTURES = Path(__file__).parent / "fixtures" / "squad"
DEV = FIXTURES / "tiny-v1.1.json"
SETTINGS = ["--preset", "cpu-fp32", "--set", "data.seq_len=128", "--set", "data.doc_stride=64",
            "--set", "data.max_query_len=48", "--set", "train.batch_size=8",
            "--set", "train.lr=3e-3", "--set", "train.log_every=1"]  # fmt: skip


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    # The dev features go to the per-user cache, as `nvlm eval` puts them: the test's own.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.fixture(scope="module", params=["bert", "electra"])
def init(request, squad_contexts, tmp_path_factory) -> tuple[str, Path]:
    """A tiny model pretrained 3 steps on the fixture paragraphs with the fixture vocab."""
    model, root = request.param, tmp_path_factory.mktemp(f"{request.param}-held-out")
    ok(invoke("data", "pretraining", "--model", model, "--input", squad_contexts,
              "--vocab", FIXTURES / "vocab-uncased.txt", "--out", root / "shards",
              "--seq-len", 64, "--max-predictions", 8, "--shards", 1, "--workers", 1))  # fmt: skip
    ok(invoke("pretrain", "--model", model, "--preset", "cpu-fp32", "--data", root / "shards",
              "--out", root / "p1", "--set", "model.size=tiny", "--steps", 3))  # fmt: skip
    return model, (root / "p1" / "hf" / "discriminator" if model == "electra" else root / "p1")


def held_out(run: Path) -> list[dict]:
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return [line for line in lines if "eval_f1" in line]


def test_dev_figures_while_training_are_what_eval_reports(init, tmp_path):
    model, source = init
    run = tmp_path / "run"
    summary = json_of(ok(invoke("finetune", "--model", model, "--task", "squad", "--data", DEV,
                                "--init", source, "--out", run, "--epochs", 2, *SETTINGS,
                                "--eval-data", DEV, "--set", "train.eval_every=2", "--json")))  # fmt: skip
    steps = summary["steps"]
    lines = held_out(run)
    assert [line["step"] for line in lines] == [*range(2, steps, 2), steps]
    assert lines[-1]["units"] == {"eval_exact_match": "%", "eval_f1": "%"}
    ev = json_of(invoke("eval", "--model", model, "--task", "squad", "--init", run,
                        "--data", DEV, "--out", tmp_path / "ev", "--json"))  # fmt: skip
    assert lines[-1]["eval_f1"] == pytest.approx(ev["f1"], abs=1e-6)
    assert lines[-1]["eval_exact_match"] == pytest.approx(ev["exact_match"], abs=1e-6)
    # The final evaluation of --eval-data (after training) is the same too.
    assert summary["eval"]["f1"] == pytest.approx(ev["f1"], abs=1e-6)


@pytest.mark.parametrize("init", ["bert"], indirect=True)  # the options are the task's
def test_eval_each_epoch_and_its_refusal_without_a_dev_set(init, tmp_path):
    model, source = init
    ok(invoke("finetune", "--model", model, "--task", "squad", "--data", DEV, "--init", source,
              "--out", tmp_path / "run", "--epochs", 2, *SETTINGS, "--eval-data", DEV,
              "--eval-each-epoch"))  # fmt: skip
    steps = [line["step"] for line in held_out(tmp_path / "run")]
    # After each of the 2 epochs: ceil(features / batch) steps each, the last one shorter.
    assert len(steps) == 2 and steps[0] == -(-steps[-1] // 2)
    result = invoke("finetune", "--model", model, "--task", "squad", "--data", DEV, "--init",
                    source, "--out", tmp_path / "no", *SETTINGS, "--set", "train.eval_every=2")  # fmt: skip
    assert error_line(result) == (
        "nvlm: error: --eval-each-epoch / train.eval_every evaluate a dev set while training: "
        "pass --eval-data DEV"
    )
    assert not (tmp_path / "no").exists()
