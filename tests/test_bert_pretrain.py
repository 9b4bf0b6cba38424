"""`nvlm pretrain --model bert` end to end on tiny models and generated text."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import checkpoint_values, error_line, invoke, json_of, kill_after_checkpoint

TINY = [
    "--set",
    "model.size=tiny",
    "--set",
    "model.dropout=0",
    "--set",
    "train.lr_per_gpu=false",
    "--set",
    "train.accumulation=1",
    "--set",
    "train.warmup_steps=10",
]


def pretrain(shards: Path, out: Path, *extra: str, steps: int = 4, preset: str = "cpu-fp32"):
    return invoke(
        "pretrain",
        "--model",
        "bert",
        "--preset",
        preset,
        "--data",
        shards,
        "--out",
        out,
        "--steps",
        steps,
        *TINY,
        "--set",
        "train.batch_size=16",
        "--set",
        "train.log_every=2",
        "--set",
        "train.checkpoint_every=2",
        "--json",
        *extra,
    )


@pytest.mark.slow
def test_tiny_bert_learns_a_repetitive_corpus(bert_shards, tmp_path):
    result = pretrain(
        bert_shards,
        tmp_path / "run",
        "--set",
        "train.lr=2e-2",
        "--set",
        "train.batch_size=32",
        "--set",
        "train.log_every=100",
        steps=700,
    )
    summary = json_of(result)
    assert summary["final"]["mlm_acc"] > 0.9
    assert summary["final"]["nsp_acc"] > 0.8
    assert 0 < summary["mfu"] <= 1.0  # of the peak measured on this machine
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert lines[-1]["mlm_loss"] < lines[0]["mlm_loss"] / 3
    assert lines[0]["units"]["seq_per_s"] == "sequences/s"
    assert (tmp_path / "run" / "config.yaml").exists() and (tmp_path / "run" / "vocab.txt").exists()


def test_sigkill_then_rerun_matches_an_uninterrupted_run(bert_shards, tmp_path):
    args = [
        "--steps",
        "40",
        *TINY,
        "--set",
        "model.dropout=0.1",
        "--set",
        "train.batch_size=16",
        "--set",
        "train.checkpoint_every=5",
        "--set",
        "train.log_every=5",
    ]

    def command(out: Path) -> list[str]:
        return [
            sys.executable,
            "-m",
            "nvlm",
            "pretrain",
            "--model",
            "bert",
            "--preset",
            "cpu-fp32",
            "--data",
            str(bert_shards),
            "--out",
            str(out),
            *args,
        ]

    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    subprocess.run(command(tmp_path / "full"), check=True, env=env, capture_output=True)
    kill_after_checkpoint(command(tmp_path / "killed"), tmp_path / "killed", env)
    rerun = subprocess.run(
        command(tmp_path / "killed") + ["--json"],
        check=True,
        env=env,
        capture_output=True,
        text=True,
    )
    summary = json.loads(rerun.stdout)
    assert 10 <= summary["resumed_from_step"] < 40 and summary["steps"] == 40
    full, resumed = checkpoint_values(tmp_path / "full"), checkpoint_values(tmp_path / "killed")
    assert full.keys() == resumed.keys()
    for key in full:
        np.testing.assert_allclose(resumed[key], full[key], atol=1e-6, rtol=0, err_msg=key)


def test_phase2_starts_from_phase1_weights_with_a_fresh_optimizer(bert_shards, tmp_path):
    json_of(pretrain(bert_shards, tmp_path / "p1", steps=6))
    p1 = checkpoint_values(tmp_path / "p1")
    result = invoke(
        "pretrain",
        "--model",
        "bert",
        "--preset",
        "cpu-fp32",
        "--phase",
        "2",
        "--init",
        tmp_path / "p1",
        "--data",
        bert_shards,
        "--out",
        tmp_path / "p2",
        "--steps",
        3,
        "--set",
        "train.lr=1e-9",
        "--set",
        "train.warmup_steps=0",
        "--set",
        "train.batch_size=8",
        "--set",
        "train.accumulation=1",
        "--set",
        "model.dropout=0",
        "--json",
    )
    summary = json_of(result)
    assert summary["stage"] == "pretrain_phase2" and summary["steps"] == 3
    assert summary["resumed_from_step"] == 0
    p2 = checkpoint_values(tmp_path / "p2")
    # With a negligible learning rate the phase-2 weights are the phase-1 weights.
    trainable = [k for k in p1 if p1[k].dtype == np.float32]
    for key in trainable:
        np.testing.assert_allclose(p2[key], p1[key], atol=1e-5, err_msg=key)


@pytest.mark.parametrize("precision", ["fp32", "tf32", "amp", "bf16"])
def test_every_precision_trains_a_few_steps(bert_shards, tmp_path, precision):
    summary = json_of(
        pretrain(bert_shards, tmp_path / precision, "--precision", precision, steps=3)
    )
    assert summary["precision"] == precision and summary["steps"] == 3
    assert np.isfinite(summary["final"]["loss"])


def test_xla_step(bert_shards, tmp_path):
    summary = json_of(pretrain(bert_shards, tmp_path / "xla", "--xla", steps=3))
    assert summary["xla"] is True and np.isfinite(summary["final"]["loss"])


def test_eval_mlm_on_held_out_shards(bert_shards, tmp_path):
    json_of(pretrain(bert_shards, tmp_path / "run", steps=4))
    result = invoke(
        "eval",
        "--model",
        "bert",
        "--task",
        "mlm",
        "--init",
        tmp_path / "run",
        "--data",
        bert_shards,
        "--json",
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout[result.stdout.index("{") :])
    assert out["sequences"] > 0 and 0.0 <= out["mlm_acc"] <= 1.0 and out["mlm_loss"] > 0


# --- bad input: one line, exit 2 --------------------------------------------------------


def test_missing_shard_directory(tmp_path):
    line = error_line(pretrain(tmp_path / "nope", tmp_path / "run"))
    assert "does not exist" in line and "nvlm data pretraining" in line


def test_shards_with_another_sequence_length(bert_shards, tmp_path):
    line = error_line(pretrain(bert_shards, tmp_path / "run", "--set", "data.seq_len=64"))
    assert "data.seq_len=64" in line and "32" in line


def test_shards_with_another_vocab_than_the_init_checkpoint(bert_shards, tmp_path):
    json_of(pretrain(bert_shards, tmp_path / "p1", steps=2))
    cfg = (tmp_path / "p1" / "config.yaml").read_text()
    (tmp_path / "p1" / "config.yaml").write_text(cfg.replace("vocab_size: ", "vocab_size: 8"))
    line = error_line(pretrain(bert_shards, tmp_path / "run", "--init", tmp_path / "p1"))
    assert "vocab" in line


def test_unknown_set_key(bert_shards, tmp_path):
    line = error_line(pretrain(bert_shards, tmp_path / "run", "--set", "train.lrr=1"))
    assert "train.lrr" in line


def test_phase2_without_init(bert_shards, tmp_path):
    r = invoke(
        "pretrain",
        "--model",
        "bert",
        "--preset",
        "cpu-fp32",
        "--phase",
        "2",
        "--data",
        bert_shards,
        "--out",
        tmp_path / "run",
    )
    assert "--init" in error_line(r)


def test_init_from_another_architecture(bert_shards, tmp_path):
    hf = tmp_path / "gpt2"
    hf.mkdir()
    (hf / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_layer": 2}))
    line = error_line(pretrain(bert_shards, tmp_path / "run", "--init", hf))
    assert "gpt2" in line


def test_rerun_with_other_settings_is_refused(bert_shards, tmp_path):
    json_of(pretrain(bert_shards, tmp_path / "run", steps=2))
    line = error_line(pretrain(bert_shards, tmp_path / "run", "--set", "train.lr=0.5", steps=2))
    assert "effective_lr" in line and "--overwrite" in line


@pytest.fixture(scope="module")
def trained(bert_shards, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("trained") / "run"
    json_of(pretrain(bert_shards, run, steps=4))
    return run


def test_convert_round_trip_is_lossless(trained, tmp_path):
    r = invoke("convert", trained, tmp_path / "hf", "--model", "bert", "--to", "hf")
    assert r.exit_code == 0, r.output
    assert {"config.json", "model.safetensors", "vocab.txt"} <= {
        p.name for p in (tmp_path / "hf").iterdir()
    }
    r = invoke("convert", tmp_path / "hf", tmp_path / "back", "--model", "bert", "--to", "nvlm")
    assert r.exit_code == 0, r.output
    before, after = checkpoint_values(trained), checkpoint_values(tmp_path / "back")
    assert len(before) == len(after)
    for key, value in after.items():
        if value.dtype == np.float32:  # weights; int tensors are dropout RNG counters
            np.testing.assert_array_equal(value, before[key], err_msg=key)
    # The converted run is a valid --init: same features from both.
    a = invoke(
        "predict",
        "--model",
        "bert",
        "--init",
        trained,
        "--task",
        "features",
        "--text",
        "the cat sat on the mat .",
    )
    b = invoke(
        "predict",
        "--model",
        "bert",
        "--init",
        tmp_path / "hf",
        "--task",
        "features",
        "--text",
        "the cat sat on the mat .",
    )
    assert a.exit_code == 0 and b.exit_code == 0, a.output + b.output
    assert json.loads(a.stdout)["features"] == json.loads(b.stdout)["features"]


def test_features_for_texts_and_jsonl(trained, tmp_path):
    r = invoke(
        "predict",
        "--model",
        "bert",
        "--init",
        trained,
        "--task",
        "features",
        "--text",
        "the cat sat",
        "--layer",
        "0",
    )
    row = json.loads(r.stdout)
    assert row["tokens"] == ["[CLS]", "the", "cat", "sat", "[SEP]"]
    assert np.shape(row["features"]) == (5, 64)  # tiny: hidden 64
    src = tmp_path / "in.jsonl"
    src.write_text('the dog\n{"text": "a park"}\n{broken\n')
    r = invoke(
        "predict",
        "--model",
        "bert",
        "--init",
        trained,
        "--task",
        "features",
        "--input",
        src,
        "--pooled",
    )
    rows = [json.loads(x) for x in r.stdout.splitlines()]
    assert [x.get("text") for x in rows[:2]] == ["the dog", "a park"]
    assert np.shape(rows[0]["features"]) == (64,)
    assert rows[2]["line"] == 3 and "error" in rows[2]
    assert r.exit_code == 1  # a failed line makes the run fail, after the others were answered
