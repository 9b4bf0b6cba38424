"""`train.keep_best=METRIC` (issue 18): RUN/best is a run directory holding the checkpoint of
the best held-out figure, that every `--init` reads; it is replaced atomically, survives a kill
and a resume unchanged, and a figure the run does not evaluate is refused before training."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from helpers import error_line, invoke, json_of, ok

from nvlm.train import best as best_mod
from nvlm.train.best import BestCheckpoint, parse_metric

TINY = ["--preset", "cpu-fp32", "--set", "model.size=tiny", "--set", "train.log_every=1",
        "--set", "train.keep_checkpoints=10", "--set", "train.checkpoint_every=2"]  # fmt: skip


def pretrain_args(shards: Path, out: Path, *args: str, steps: int = 6) -> list[str]:
    return ["pretrain", "--model", "bert", "--data", str(shards), "--out", str(out),
            "--steps", str(steps), *TINY, "--eval-data", str(shards),
            "--set", "train.eval_every=2", *args]  # fmt: skip


def held_out(run: Path, figure: str) -> dict[int, float]:
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return {line["step"]: line[f"eval_{figure}"] for line in lines if f"eval_{figure}" in line}


def tensors(prefix: Path) -> dict[str, np.ndarray]:
    reader = tf.train.load_checkpoint(str(prefix))
    return {
        k: reader.get_tensor(k)
        for k in reader.get_variable_to_shape_map()
        if k.startswith("state/") and "OPTIMIZER" not in k
    }


def assert_same_tensors(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


@pytest.mark.slow
def assert_best_is_that_step(run, step: int, record: dict, shards) -> None:
    """RUN/best holds the whole training state of checkpoint `step`, and `nvlm eval --init
    RUN/best` evaluates those weights (the recorded figure), not the last ones."""
    assert_same_tensors(
        tensors(run / "best" / "checkpoints" / f"ckpt-{step}"),
        tensors(run / "checkpoints" / f"ckpt-{step}"),
    )
    ev = json_of(invoke("eval", "--model", "bert", "--task", "mlm", "--init", run / "best",
                        "--data", shards, "--json"))  # fmt: skip
    assert ev["mlm_loss"] == pytest.approx(record["value"], abs=1e-6)


def test_best_is_the_lowest_held_out_loss_and_init_run_best_loads_it(bert_shards, tmp_path):
    run = tmp_path / "run"
    ok(invoke(*pretrain_args(bert_shards, run, "--set", "train.keep_best=mlm_loss")))
    figures = held_out(run, "mlm_loss")
    assert sorted(figures) == [2, 4, 6]
    step = min(figures, key=lambda s: (figures[s], s))  # the earliest of equal figures
    record = json.loads((run / "best" / "best.json").read_text())
    assert record == {"metric": "mlm_loss", "value": figures[step], "step": step, "mode": "min"}
    # Readable as the run's other directories (not private to its owner, as mkdtemp makes).
    assert (run / "best").stat().st_mode & 0o777 == (run / "checkpoints").stat().st_mode & 0o777
    # A complete minimal run directory, and no temporary directory left beside it.
    assert sorted(p.name for p in (run / "best").iterdir()) == [
        ".nvlm", "best.json", "checkpoints", "config.yaml", "tokenizer_config.json", "vocab.txt"
    ]  # fmt: skip
    assert not [p.name for p in run.iterdir() if p.name.startswith(".best")]
    assert_best_is_that_step(run, step, record, bert_shards)
    # --init RUN/best starts a fine-tuning run as --init RUN does.
    rows = [{"text": t, "label": str(i % 2)} for i, t in enumerate(["the cat sat", "a dog ran"])]
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    summary = json_of(invoke("finetune", "--task", "classify", "--data", data, "--init",
                             run / "best", "--out", tmp_path / "cls", "--preset", "cpu-fp32",
                             "--epochs", 1, "--json"))  # fmt: skip
    assert summary["steps"] >= 1
    # --overwrite clears the run, its best checkpoint included.
    ok(invoke(*pretrain_args(bert_shards, run, "--overwrite", steps=2)))
    assert not (run / "best").exists()


def test_an_explicit_direction_keeps_an_earlier_step(bert_shards, tmp_path):
    # The loss falls over these steps: max:mlm_loss keeps the first evaluation, not the last.
    run = tmp_path / "run"
    summary = json_of(invoke(*pretrain_args(bert_shards, run, "--set",
                                            "train.keep_best=max:mlm_loss", "--json")))  # fmt: skip
    figures = held_out(run, "mlm_loss")
    step = max(figures, key=lambda s: (figures[s], -s))
    assert step < 6
    # The summary names the last held-out figures and the best checkpoint.
    assert summary["held_out"]["mlm_loss"] == pytest.approx(figures[6], abs=1e-6)
    assert summary["best"] == {"path": str(run / "best"), "metric": "mlm_loss",
                               "value": figures[step], "step": step}  # fmt: skip
    record = json.loads((run / "best" / "best.json").read_text())
    assert record == {"metric": "mlm_loss", "value": figures[step], "step": step, "mode": "max"}
    assert_best_is_that_step(run, step, record, bert_shards)


def test_a_figure_the_run_does_not_evaluate_is_refused_before_training(bert_shards, tmp_path):
    result = invoke(*pretrain_args(bert_shards, tmp_path / "run", "--set", "train.keep_best=f1"))
    assert error_line(result) == (
        "nvlm: error: train.keep_best=f1: this run's held-out figures are mlm_acc, mlm_loss, "
        "nsp_acc, nsp_loss (name one of them, optionally as min:NAME or max:NAME)"
    )
    assert not (tmp_path / "run").exists()  # what the command wrote is taken back


def test_keep_best_without_evaluation_is_refused(bert_shards, tmp_path):
    result = invoke("pretrain", "--model", "bert", "--data", bert_shards, "--out",
                    tmp_path / "run", *TINY, "--set", "train.keep_best=mlm_loss")  # fmt: skip
    assert error_line(result) == (
        "nvlm: error: train.keep_best=mlm_loss needs held-out evaluation while training, and "
        "this run evaluates nothing (pass --eval-data, or drop train.keep_best)"
    )
    assert not (tmp_path / "run").exists()


def test_a_late_refusal_in_a_directory_made_beforehand_leaves_it_empty(bert_shards, tmp_path):
    (tmp_path / "run").mkdir()
    result = invoke(*pretrain_args(bert_shards, tmp_path / "run", "--set", "train.keep_best=f1"))
    assert error_line(result).startswith("nvlm: error: train.keep_best=f1: ")
    # Only the lock file of the directory (as after any refusal in a directory made before).
    assert [p.name for p in (tmp_path / "run").iterdir()] == [".lock"]


@pytest.mark.slow
def test_a_killed_run_resumes_to_the_same_best(bert_shards, tmp_path):
    args = ["--set", "train.keep_best=mlm_loss", "--set", "train.checkpoint_every=4"]
    ok(invoke(*pretrain_args(bert_shards, tmp_path / "full", *args, steps=8)))
    # SIGKILL at the start of step 7: steps 2, 4 and 6 were evaluated (RUN/best may be at
    # step 6) but the newest checkpoint is step 4, so the rerun evaluates step 6 again.
    killed = tmp_path / "killed"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", NVLM_TEST_CRASH_RANK="0",
               NVLM_TEST_CRASH_STEP="7", NVLM_TEST_CRASH_MODE="kill")  # fmt: skip
    proc = subprocess.run([sys.executable, "-m", "nvlm",
                           *pretrain_args(bert_shards, killed, *args, steps=8)],
                          env=env, capture_output=True)  # fmt: skip
    assert proc.returncode == -9
    assert (killed / "best" / "best.json").is_file()
    ok(invoke(*pretrain_args(bert_shards, killed, *args, steps=8)))
    full = json.loads((tmp_path / "full" / "best" / "best.json").read_text())
    assert json.loads((killed / "best" / "best.json").read_text()) == full
    prefix = Path("best") / "checkpoints" / f"ckpt-{full['step']}"
    assert_same_tensors(tensors(killed / prefix), tensors(tmp_path / "full" / prefix))


# -- the directory swap, on a small state --------------------------------------------------------
class _State(tf.Module):
    def __init__(self, value: float) -> None:
        super().__init__(name="state")
        self.weights = tf.Variable(tf.fill([3], value))


def _run(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("model: {}\ntrain: {}\n")
    (run / "vocab.txt").write_text("[PAD]\n")
    return run


def _best_weights(run: Path) -> np.ndarray:
    record = json.loads((run / "best" / "best.json").read_text())
    prefix = run / "best" / "checkpoints" / f"ckpt-{record['step']}"
    return tf.train.load_checkpoint(str(prefix)).get_tensor(
        "state/weights/.ATTRIBUTES/VARIABLE_VALUE"
    )


def test_a_save_that_fails_at_the_swap_leaves_the_previous_best(tmp_path, monkeypatch):
    run = _run(tmp_path)
    best = BestCheckpoint(run, "mlm_loss", "min")
    assert best.consider(2, {"eval_mlm_loss": 3.0}, _State(1.0))

    def fail(new, dst):
        raise OSError("injected: killed while replacing RUN/best")

    monkeypatch.setattr(best_mod, "_swap", fail)
    with pytest.raises(OSError, match="injected"):
        best.consider(4, {"eval_mlm_loss": 2.0}, _State(2.0))
    assert json.loads((run / "best" / "best.json").read_text())["step"] == 2
    np.testing.assert_array_equal(_best_weights(run), [1.0, 1.0, 1.0])
    assert sorted(p.name for p in run.iterdir()) == ["best", "config.yaml", "vocab.txt"]


def test_what_a_kill_during_a_save_left_is_tidied_by_the_next_run(tmp_path):
    run = _run(tmp_path)
    BestCheckpoint(run, "f1", "max").write(2, 50.0, _State(1.0))
    # Killed while writing the next one: an incomplete temporary directory (no best.json).
    (run / ".best.tmp-abc123" / "checkpoints").mkdir(parents=True)
    resumed = BestCheckpoint(run, "f1", "max")
    assert (resumed.value, resumed.step) == (50.0, 2)  # comparisons continue
    assert not resumed.is_better(50.0) and resumed.is_better(50.5)
    assert sorted(p.name for p in run.iterdir()) == ["best", "config.yaml", "vocab.txt"]
    # Killed between the two renames (no RENAME_EXCHANGE): the old best renamed aside, the new
    # one complete; the new one is put in place.
    BestCheckpoint(run, "f1", "max").write(4, 60.0, _State(3.0))
    os.replace(run / "best", run / ".best.old-xyz")
    resumed = BestCheckpoint(run, "f1", "max")
    assert (resumed.value, resumed.step) == (60.0, 4)
    assert sorted(p.name for p in run.iterdir()) == ["best", "config.yaml", "vocab.txt"]


def test_without_rename_exchange_the_old_best_is_renamed_aside_then_removed(tmp_path, monkeypatch):
    monkeypatch.setattr(best_mod, "_exchange", lambda a, b: False)
    run = _run(tmp_path)
    best = BestCheckpoint(run, "ppl", "min")
    best.consider(1, {"eval_ppl": 9.0}, _State(1.0))
    best.consider(2, {"eval_ppl": 10.0}, _State(2.0))  # worse: kept
    best.consider(3, {"eval_ppl": 8.0}, _State(3.0))
    assert json.loads((run / "best" / "best.json").read_text())["step"] == 3
    np.testing.assert_array_equal(_best_weights(run), [3.0, 3.0, 3.0])
    assert sorted(p.name for p in run.iterdir()) == ["best", "config.yaml", "vocab.txt"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [("mlm_loss", ("mlm_loss", "min")), ("ppl", ("ppl", "min")), ("dev_mse", ("dev_mse", "min")),
     ("bpc", ("bpc", "min")), ("accuracy", ("accuracy", "max")), ("f1", ("f1", "max")),
     ("exact", ("exact", "max")), ("max:mlm_loss", ("mlm_loss", "max")),
     ("min:accuracy", ("accuracy", "min"))],
)  # fmt: skip
def test_the_direction_comes_from_the_name_or_a_prefix(value, expected):
    assert parse_metric(value) == expected
