"""`nvlm pretrain|eval|predict --model transformer-xl` end to end on a tiny model."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from helpers import (
    TXL_SENTENCES,
    checkpoint_values,
    error_line,
    invoke,
    json_of,
    kill_after_checkpoint,
)

# Tiny model, short segments: a few seconds per run on 2 cores.
TINY = [
    "--preset", "cpu-fp32", "--set", "model.size=tiny", "--set", "data.seq_len=16",
    "--set", "model.mem_len=16", "--set", "train.batch_size=4", "--set", "train.accumulation=2",
    "--set", "train.warmup_steps=5", "--set", "train.log_every=5",
    "--set", "train.checkpoint_every=5",
]  # fmt: skip
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
for _var in ("NVLM_CHILD", "OMPI_COMM_WORLD_RANK", "HOROVOD_RANK", "PMI_RANK", "SLURM_JOB_ID"):
    ENV.pop(_var, None)


def pretrain(data: Path, out: Path, *extra, steps: int = 4):
    return invoke("pretrain", "--model", "transformer-xl", "--data", data, "--out", out,
                  "--steps", steps, *TINY, "--json", *extra)  # fmt: skip


def evaluate(run: Path, data: Path, *extra):
    return invoke("eval", "--model", "transformer-xl", "--task", "lm", "--init", run,
                  "--data", data, "--json", *extra)  # fmt: skip


def memory_of(state: dict[str, np.ndarray]) -> np.ndarray:
    [key] = [k for k in state if k.startswith("state/extra/")]
    return state[key]


@pytest.fixture(scope="module")
def trained(txl_corpus, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("txl-run") / "run"
    summary = json_of(pretrain(txl_corpus, run, "--set", "train.lr=0.05", "--set",
                               "model.dropout=0", "--set", "train.log_every=20", steps=80))  # fmt: skip
    assert summary["stage"] == "train" and summary["steps"] == 80
    return run


@pytest.mark.slow
def test_tiny_model_learns_a_repetitive_corpus(trained, txl_corpus):
    summary = json.loads((trained / "summary.json").read_text())
    assert summary["final"]["ppl"] < 1.5 and 0 < summary["mfu"] <= 1.0  # of the measured peak
    lines = [json.loads(x) for x in (trained / "metrics.jsonl").read_text().splitlines()]
    assert lines[0]["units"]["bpt"] == "bits/token" and lines[0]["units"]["bpc"] == "bits/character"
    assert lines[-1]["loss"] < lines[0]["loss"] / 4
    out = json_of(evaluate(trained, txl_corpus, "--split", "valid"))
    splits = json.loads((txl_corpus / "manifest.json").read_text())["splits"]
    valid_tokens = splits["valid"]["tokens"]
    assert out["ppl"] < 1.5 and out["tokens"] == valid_tokens - 1  # each once, but the first
    assert out["bpc"] < out["bpt"] and out["latency_p99_ms"] >= out["latency_p50_ms"] > 0
    # The X1 evaluation settings come from the preset's eval stage.
    assert (out["tgt_len"], out["mem_len"], out["clamp_len"], out["same_length"]) == (
        64, 640, 400, True
    )  # fmt: skip
    r = invoke("predict", "--model", "transformer-xl", "--init", trained,
               "--text", "the cat sat on the mat .\na dog ran in the", "--next", "3",
               "--json")  # fmt: skip
    assert json_of(r)["next"][0]["word"] == "park"
    r = invoke("predict", "--model", "transformer-xl", "--init", trained,
               "--text", "birds sing in", "--generate", "9")  # fmt: skip
    assert r.exit_code == 0 and r.stdout.startswith("birds sing in the morning .\nshe likes")


def test_eval_of_a_text_file_and_scoring_lines(trained, txl_corpus, tmp_path):
    text = tmp_path / "heldout.txt"
    text.write_text("she likes green apples .\nwe bake bread on sunday .\n")
    out = json_of(evaluate(trained, text))
    assert out["tokens"] == 6 + 7 - 1 and out["data"] == str(text)
    lines = tmp_path / "lines.jsonl"
    lines.write_text('{"id": "a", "text": "the cat sat on the mat ."}\nzebras sat on the mat\n')
    r = invoke("predict", "--model", "transformer-xl", "--init", trained, "--input", lines)
    assert r.exit_code == 0, r.output
    first, second = (json.loads(x) for x in r.stdout.splitlines())
    assert first["id"] == "a" and first["tokens"] == 8 and first["line"] == 1
    assert second["unk"] == 1 and second["tokens"] == 6
    assert first["perplexity"] == pytest.approx(np.exp(-first["log_likelihood"] / 8), rel=1e-4)
    # Sampling is reproducible with a seed.
    gen = [invoke("predict", "--model", "transformer-xl", "--init", trained, "--text", "the",
                  "--generate", "6", "--temperature", "2", "--seed", str(s), "--json")
           for s in (1, 1, 2)]  # fmt: skip
    a, b, c = (json_of(g)["continuation"] for g in gen)
    assert a == b and json_of(gen[2])["decoding"].startswith("sampling")


@pytest.mark.parametrize("precision", ["fp32", "tf32", "amp", "bf16"])
def test_every_precision_trains_a_few_steps(txl_corpus, tmp_path, precision):
    summary = json_of(pretrain(txl_corpus, tmp_path / precision, "--precision", precision, steps=3))
    assert summary["precision"] == precision and summary["steps"] == 3
    assert np.isfinite(summary["final"]["loss"]) and summary["final"]["ppl"] > 1
    dtype = {"amp": np.float16, "bf16": tf.bfloat16.as_numpy_dtype}.get(precision, np.float32)
    assert memory_of(checkpoint_values(tmp_path / precision, "state/")).dtype == dtype


def test_xla_step(txl_corpus, tmp_path):
    summary = json_of(pretrain(txl_corpus, tmp_path / "xla", "--xla", steps=3))
    assert summary["xla"] is True and np.isfinite(summary["final"]["loss"])


@pytest.mark.slow
def test_sigkill_then_rerun_matches_an_uninterrupted_run(txl_corpus, tmp_path):
    """Weights, optimizer, data position AND the segment memories continue exactly."""
    args = ["--steps", "30", *TINY, "--set", "model.dropout=0.1"]

    def command(out: Path) -> list[str]:
        return [sys.executable, "-m", "nvlm", "pretrain", "--model", "transformer-xl",
                "--data", str(txl_corpus), "--out", str(out), *args]  # fmt: skip

    subprocess.run(command(tmp_path / "full"), check=True, env=ENV, capture_output=True)
    kill_after_checkpoint(command(tmp_path / "killed"), tmp_path / "killed", ENV)
    rerun = subprocess.run(command(tmp_path / "killed") + ["--json"], check=True, env=ENV,
                           capture_output=True, text=True)  # fmt: skip
    summary = json.loads(rerun.stdout)
    assert 10 <= summary["resumed_from_step"] < 30 and summary["steps"] == 30
    full, resumed = (
        checkpoint_values(tmp_path / "full", "state/"),
        checkpoint_values(tmp_path / "killed", "state/"),
    )
    assert full.keys() == resumed.keys()
    assert np.abs(memory_of(full)).max() > 0  # the memories are saved...
    for key in full:  # ...and, like every other piece of state, continued exactly
        np.testing.assert_allclose(resumed[key], full[key], atol=1e-6, rtol=0, err_msg=key)
    a, b = (
        json_of(evaluate(tmp_path / r, txl_corpus, "--split", "test")) for r in ("full", "killed")
    )
    assert a["loss"] == pytest.approx(b["loss"], abs=1e-6)


@pytest.mark.slow
@pytest.mark.horovod
def test_two_ranks_match_one_process_memories_included(txl_corpus, tmp_path):
    pytest.importorskip("horovod.tensorflow", reason="Horovod is built by `make horovod`")

    def base(steps: int) -> list:
        return ["pretrain", "--model", "transformer-xl", "--data", txl_corpus, "--steps", steps,
                *TINY, "--set", "model.dropout=0", "--set", "train.accumulation=1"]  # fmt: skip

    one = json_of(invoke(*base(6), "--out", tmp_path / "one", "--set", "train.batch_size=8",
                         "--json"))  # fmt: skip
    two = json_of(invoke(*base(6), "--out", tmp_path / "two", "--gpus", 2, "--set",
                         "train.batch_size=4", "--launcher", "horovodrun", "--json"))  # fmt: skip
    assert (one["global_batch"], two["global_batch"], two["processes"]) == (8, 8, 2)
    a, b = (
        checkpoint_values(tmp_path / "one", "state/"),
        checkpoint_values(tmp_path / "two", "state/"),
    )
    # Rank 1's rows of the memory reached rank 0's checkpoint (gathered before saving).
    np.testing.assert_allclose(memory_of(b), memory_of(a), atol=1e-5, rtol=0)
    for key in a:
        if key.startswith("state/model_vars/"):
            np.testing.assert_allclose(b[key], a[key], atol=1e-5, rtol=0, err_msg=key)
    # Step 5's 2-rank checkpoint resumes on one process (rows are global) and ends like the
    # 1-process run, memories included.
    resumed = tmp_path / "resumed"
    shutil.copytree(tmp_path / "two", resumed)
    for path in (resumed / "checkpoints").glob("ckpt-6.*"):
        path.unlink()
    tf.compat.v1.train.update_checkpoint_state(str(resumed / "checkpoints"), "ckpt-5")
    summary = json_of(invoke(*base(6), "--out", resumed, "--set", "train.batch_size=8", "--json"))
    assert summary["resumed_from_step"] == 5 and summary["processes"] == 1
    a, b = checkpoint_values(tmp_path / "one", "state/"), checkpoint_values(resumed, "state/")
    np.testing.assert_allclose(memory_of(b), memory_of(a), atol=1e-5, rtol=0)


# --- bad input: one line, exit 2 --------------------------------------------------------------


def test_lm_directory_with_another_vocabulary_than_the_checkpoint(trained, txl_corpus, tmp_path):
    text = tmp_path / "other.txt"
    # The same words (same vocabulary size) in another frequency order.
    text.write_text("\n".join([*TXL_SENTENCES, "birds birds birds birds birds"]) + "\n")
    r = invoke("data", "lm", "--train", text, "--valid", text, "--out", tmp_path / "other")
    assert r.exit_code == 0, r.output
    line = error_line(evaluate(trained, tmp_path / "other", "--split", "valid"))
    assert "another vocabulary" in line and "--vocab" in line
    line = error_line(pretrain(tmp_path / "other", tmp_path / "run", "--init", trained))
    assert "another vocabulary" in line
    # Rebuilt with the checkpoint's vocab.txt, the same text is accepted.
    r = invoke("data", "lm", "--train", text, "--valid", text, "--out", tmp_path / "same",
               "--vocab", trained / "vocab.txt")  # fmt: skip
    assert r.exit_code == 0 and json_of(evaluate(trained, tmp_path / "same", "--split", "valid"))


def test_missing_split_memory_and_cutoffs(txl_corpus, tmp_path, trained):
    r = invoke(
        "data", "lm", "--train", txl_corpus.parent / "train.txt", "--out", tmp_path / "no-test"
    )
    assert r.exit_code == 0
    line = error_line(evaluate(trained, tmp_path / "no-test", "--split", "test"))
    assert "has no test split" in line
    line = error_line(pretrain(txl_corpus, tmp_path / "a", "--set", "model.mem_len=-1"))
    assert "model.mem_len=-1 must be >= 0" in line
    line = error_line(pretrain(txl_corpus, tmp_path / "b", "--set", "model.cutoffs=[10, 5]"))
    assert "model.cutoffs=[10, 5]" in line and "increasing" in line
    line = error_line(pretrain(txl_corpus, tmp_path / "c", "--set", "model.cutoffs=[10, 19997]"))
    assert "beyond the vocabulary" in line and "model.cutoffs=[]" in line
    line = error_line(pretrain(txl_corpus, tmp_path / "d", "--set", "data.seq_len=5000"))
    assert "too few" in line and "data.seq_len" in line
    line = error_line(pretrain(tmp_path / "nope", tmp_path / "e"))
    assert "does not exist" in line and "nvlm data lm" in line
