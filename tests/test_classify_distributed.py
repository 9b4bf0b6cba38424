"""`nvlm finetune --task classify` on 2 CPU processes under horovodrun (Gloo) ends with the
weights of 1 process with the same global batch, with and without gradient accumulation.

Why equal weights are expected: as for SQuAD in test_distributed.py, rank r takes every 2nd
example of each global micro-batch and the classification loss is a mean of per-example
losses, so the rank-averaged (and micro-batch-accumulated) gradient is the single-process one.
Dropout is off; the tolerance is test_distributed.py's for SQuAD (atol 1e-5).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from helpers import invoke, ok

from nvlm.data.demo_classify import write_demo_classify

hvd = pytest.importorskip("horovod.tensorflow", reason="Horovod is built by `make horovod`")
pytestmark = [pytest.mark.horovod, pytest.mark.slow]

from test_distributed import assert_same_weights, statuses  # noqa: E402  (needs Horovod)

BERT = Path(__file__).parent / "fixtures" / "bert_tiny_hf"
STEPS = 6
GLOBAL_BATCH = 8


def finetune(data: Path, out: Path, processes: int, accumulation: int = 1, *extra) -> dict:
    micro = GLOBAL_BATCH // processes // accumulation
    args = [
        "finetune", "--model", "bert", "--task", "classify", "--data", data / "classify-train.jsonl",
        "--init", BERT, "--out", out, "--preset", "cpu-fp32", "--gpus", processes,
        "--set", "model.dropout=0", "--set", "model.attention_dropout=0",
        "--set", "data.seq_len=64", "--set", "train.epochs=null", "--set", f"train.steps={STEPS}",
        "--set", "train.warmup_proportion=null", "--set", "train.warmup_steps=2",
        "--set", f"train.batch_size={micro}", "--set", f"train.accumulation={accumulation}",
        "--set", "train.lr=1e-3", "--set", "train.lr_per_gpu=false", "--set", "train.log_every=2",
        *extra, "--json",
    ]  # fmt: skip
    return json.loads(ok(invoke(*args)).stdout)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    # The demo's labelled set (ours, generated): 48 examples, so 6 steps of 8 need one epoch.
    out = tmp_path_factory.mktemp("classify")
    write_demo_classify(out, examples=48, seed=0)
    return out


@pytest.fixture(scope="module")
def one_process(data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "one"
    summary = finetune(data, out, 1)
    assert summary["steps"] == STEPS and summary["global_batch"] == GLOBAL_BATCH
    return out


@pytest.mark.parametrize("accumulation", [1, 2], ids=["no-accumulation", "accumulation-2"])
def test_two_ranks_end_with_the_weights_of_one_process(accumulation, data, one_process, tmp_path):
    out = tmp_path / "two"
    summary = finetune(data, out, 2, accumulation, "--launcher", "horovodrun")
    assert summary["processes"] == 2 and summary["global_batch"] == GLOBAL_BATCH
    assert summary["steps"] == STEPS
    train = yaml.safe_load((out / "config.yaml").read_text())["train"]
    assert (train["batch_size"], train["accumulation"]) == (4 // accumulation, accumulation)
    assert_same_weights(one_process, out, atol=1e-5)
    assert statuses(out) == {0: "ok", 1: "ok"}
    # The logged loss is the whole global batch's (averaged over ranks), not rank 0's share.
    final_one = json.loads((one_process / "summary.json").read_text())["final"]
    assert summary["final"]["loss"] == pytest.approx(final_one["loss"], abs=1e-4)
