"""Perplexity on a valid split while Transformer-XL trains (issue 18): `nvlm pretrain --model
transformer-xl --eval-data LMDIR --set train.eval_every=N` logs what `nvlm eval --task lm
--split valid` reports, and changes nothing the run trains with."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import checkpoint_values, error_line, invoke, json_of, kill_after_checkpoint, ok

TINY = [
    "--preset", "cpu-fp32", "--set", "model.size=tiny", "--set", "data.seq_len=16",
    "--set", "model.mem_len=16", "--set", "train.batch_size=4", "--set", "train.log_every=1",
    "--set", "train.warmup_steps=2",
]  # fmt: skip
FIGURES = {"loss": "nats", "ppl": "1", "bpt": "bits/token", "bpc": "bits/character"}


def pretrain(data: Path, out: Path, *extra, steps: int = 4):
    return invoke("pretrain", "--model", "transformer-xl", "--data", data, "--out", out,
                  "--steps", steps, *TINY, *extra)  # fmt: skip


def held_out(run: Path) -> list[dict]:
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in line.items() if k != "wall_time_s"}
            for line in lines if "eval_ppl" in line]  # fmt: skip


def test_valid_perplexity_is_what_eval_reports_and_changes_nothing(txl_corpus, tmp_path):
    ok(pretrain(txl_corpus, tmp_path / "plain"))
    result = ok(pretrain(txl_corpus, tmp_path / "run", "--eval-data", txl_corpus,
                         "--set", "train.eval_every=2"))  # fmt: skip
    assert "step 2: held-out loss" in result.stderr
    lines = held_out(tmp_path / "run")
    assert [line["step"] for line in lines] == [2, 4]
    assert lines[-1]["units"] == {f"eval_{k}": u for k, u in FIGURES.items()}
    assert lines[0]["eval_loss"] != lines[1]["eval_loss"]  # evaluated with the weights of then
    # The last figures are `nvlm eval --split valid` of the final checkpoint (the eval stage's
    # tgt_len, mem_len, clamp_len and same_length, not the training ones).
    ev = json_of(invoke("eval", "--model", "transformer-xl", "--task", "lm", "--init",
                        tmp_path / "run", "--data", txl_corpus, "--split", "valid", "--json"))  # fmt: skip
    for name in FIGURES:
        assert lines[-1][f"eval_{name}"] == pytest.approx(ev[name], rel=1e-5, abs=1e-5), name
    # Everything the checkpoint saves (weights, optimizer, training memories, data position)
    # is bit for bit that of the run without evaluation.
    plain = checkpoint_values(tmp_path / "plain", prefix="state/")
    evaluated = checkpoint_values(tmp_path / "run", prefix="state/")
    assert plain.keys() == evaluated.keys() and any("extra" in k for k in plain)
    for name in plain:
        np.testing.assert_array_equal(evaluated[name], plain[name], err_msg=name)


def test_eval_every_alone_evaluates_the_training_valid_split(txl_corpus, tmp_path):
    result = ok(pretrain(txl_corpus, tmp_path / "run", "--set", "train.eval_every=3"))
    assert (
        f"train.eval_every: evaluating the valid split of {txl_corpus} (no --eval-data given)"
    ) in " ".join(result.stderr.split())
    assert [line["step"] for line in held_out(tmp_path / "run")] == [3, 4]
    # --eval-data alone: after the last step only.
    ok(pretrain(txl_corpus, tmp_path / "end", "--eval-data", txl_corpus, steps=2))
    assert [line["step"] for line in held_out(tmp_path / "end")] == [2]


def test_a_directory_without_a_valid_split_is_one_line(txl_corpus, tmp_path):
    text = tmp_path / "t.txt"
    text.write_text("the cat sat on the mat .\n" * 50)
    ok(invoke("data", "lm", "--train", text, "--out", tmp_path / "lm"))
    result = pretrain(tmp_path / "lm", tmp_path / "a", "--set", "train.eval_every=2")
    assert error_line(result) == (
        f"nvlm: error: train.eval_every evaluates a valid split and {tmp_path / 'lm'} has none: "
        "pass --eval-data LMDIR (an nvlm data lm directory with --valid)"
    )
    result = pretrain(txl_corpus, tmp_path / "b", "--eval-data", tmp_path / "lm")
    assert error_line(result) == (
        f"nvlm: error: {tmp_path / 'lm'} has no valid split (it has: train; rebuild it with "
        "nvlm data lm --valid FILE)"
    )
    result = pretrain(txl_corpus, tmp_path / "c", "--eval-data", tmp_path / "nowhere")
    assert result.exit_code == 2 and "nowhere" in error_line(result)
    assert not (tmp_path / "c").exists()


@pytest.mark.slow
def test_a_killed_run_with_evaluation_resumes_to_the_same_weights_and_figures(txl_corpus, tmp_path):
    def command(out: Path) -> list[str]:
        return [sys.executable, "-m", "nvlm", "pretrain", "--model", "transformer-xl",
                "--data", str(txl_corpus), "--out", str(out), "--steps", "12", *TINY,
                "--set", "train.checkpoint_every=4", "--set", "train.eval_every=3",
                "--eval-data", str(txl_corpus)]  # fmt: skip

    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    for var in ("NVLM_CHILD", "OMPI_COMM_WORLD_RANK", "HOROVOD_RANK", "PMI_RANK"):
        env.pop(var, None)
    import subprocess

    subprocess.run(command(tmp_path / "full"), check=True, env=env, capture_output=True)
    kill_after_checkpoint(command(tmp_path / "killed"), tmp_path / "killed", env, step=4)
    rerun = subprocess.run(command(tmp_path / "killed") + ["--json"], check=True, env=env,
                           capture_output=True, text=True)  # fmt: skip
    summary = json.loads(rerun.stdout)
    assert 4 <= summary["resumed_from_step"] < 12 and summary["steps"] == 12
    full = checkpoint_values(tmp_path / "full", prefix="state/")
    resumed = checkpoint_values(tmp_path / "killed", prefix="state/")
    assert full.keys() == resumed.keys()
    for key in full:
        np.testing.assert_array_equal(resumed[key], full[key], err_msg=key)
    full_evals, resumed_evals = (held_out(tmp_path / name) for name in ("full", "killed"))
    assert [line["step"] for line in full_evals] == [3, 6, 9, 12]
    assert resumed_evals == full_evals
