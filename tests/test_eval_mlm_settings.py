"""`nvlm eval --task mlm` honours the run and the flags (issue 16): XLA compiles the evaluation
step and gives the eager figures, and the summary says which precision, XLA and batch it used."""

from __future__ import annotations

from unittest.mock import ANY

import pytest
from helpers import invoke, json_of, ok


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    """Tiny pretraining runs by model, made once for this module."""
    return {"root": tmp_path_factory.mktemp("mlm-settings")}


def pretrained(model: str, shards, runs: dict):
    if model in runs:
        return runs[model]
    out = runs["root"] / model
    ok(invoke("pretrain", "--model", model, "--preset", "cpu-fp32", "--data", shards,
              "--out", out, "--steps", 3, "--set", "model.size=tiny"))  # fmt: skip
    runs[model] = out
    return out


def mlm_eval(model: str, run, shards, *args) -> dict:
    return json_of(invoke("eval", "--model", model, "--task", "mlm", "--init", run,
                          "--data", shards, "--json", *args))  # fmt: skip


# BERT's masks are in its shards, ELECTRA's are keyed by each sequence's index (a counter
# hash, the same eager and compiled; before, XLA's random bits gave other masks and figures
# 5e-4 apart): XLA gives the eager figures.
@pytest.mark.parametrize(
    ("model", "figures", "rel"),
    [
        ("bert", ("mlm_loss", "mlm_acc", "nsp_loss"), 1e-4),
        ("electra", ("gen_loss", "gen_acc", "disc_loss", "disc_acc"), 1e-4),
    ],
)
def test_mlm_eval_with_xla_gives_the_eager_figures_and_says_so(
    model, figures, rel, bert_shards, electra_shards, runs
):
    shards = bert_shards if model == "bert" else electra_shards
    run = pretrained(model, shards, runs)
    eager = mlm_eval(model, run, shards)
    compiled = mlm_eval(model, run, shards, "--xla")
    assert (eager["precision"], eager["xla"]) == ("fp32", False)
    assert compiled["xla"] is True
    assert compiled["sequences"] == eager["sequences"]
    for key in figures:
        assert compiled[key] == pytest.approx(eager[key], rel=rel, abs=1e-5), key
    if model == "electra":  # the same draws each time
        assert mlm_eval(model, run, shards, "--xla") == compiled | {"time_s": ANY, "seq_per_s": ANY}


def test_mlm_eval_runs_in_the_precision_and_batch_asked_for(bert_shards, runs):
    run = pretrained("bert", bert_shards, runs)
    fp32 = mlm_eval("bert", run, bert_shards)
    bf16 = mlm_eval("bert", run, bert_shards, "--precision", "bf16", "--batch-size", 16)
    assert (bf16["precision"], bf16["batch_size"]) == ("bf16", 16)
    assert fp32["batch_size"] != 16  # the run's (cpu-fp32) inference batch
    assert bf16["mlm_loss"] == pytest.approx(fp32["mlm_loss"], rel=5e-2)
