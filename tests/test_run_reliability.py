"""The run directory nothing can corrupt (issue 13, docs/reliability.md): --overwrite, inputs,
locking, resume from damaged checkpoints, finished runs, exit codes, batch-job console."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import checkpoint_values, error_line, invoke
from test_bert_pretrain import TINY

from nvlm import report, run_dir

ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")


def args(data: Path, out: Path, steps: int = 20, *extra) -> list[str]:
    return [
        "pretrain",
        "--model",
        "bert",
        "--preset",
        "cpu-fp32",
        "--data",
        str(data),
        "--out",
        str(out),
        "--steps",
        str(steps),
        *TINY,
        "--set",
        "model.dropout=0.1",
        "--set",
        "train.batch_size=16",
        "--set",
        "train.checkpoint_every=5",
        "--set",
        "train.log_every=5",
        *extra,
    ]


def command(data: Path, out: Path, steps: int = 20, *extra) -> list[str]:
    return [sys.executable, "-m", "nvlm", *args(data, out, steps, *extra)]


def tree(path: Path) -> dict[str, tuple[int, int]]:
    """Every file under `path` with its size and mtime (what "nothing touched" means)."""
    return {
        str(p.relative_to(path)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def finished(bert_shards, tmp_path_factory) -> Path:
    """A 20-step run (checkpoints 5, 10, 15, 20) made once; tests copy it."""
    run = tmp_path_factory.mktemp("finished") / "run"
    done = subprocess.run(command(bert_shards, run), env=ENV, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return run


def copy_run(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


# -- --overwrite and inputs ----------------------------------------------------------------------
def test_overwrite_refuses_a_directory_nvlm_did_not_make_and_touches_nothing(bert_shards, tmp_path):
    import shutil

    work = tmp_path / "w"
    work.mkdir()
    (work / "a.txt").write_text("keep\n")
    shutil.copytree(bert_shards, work / "shards")
    before = tree(work)
    result = invoke(*args(work / "shards", work, 4, "--overwrite"))
    assert result.exit_code == 2
    assert f"--out {work} contains the input --data {work / 'shards'}" in error_line(result)
    assert tree(work) == before

    (work / "shards-elsewhere").mkdir()
    result = invoke(*args(bert_shards, work, 4, "--overwrite"))
    assert result.exit_code == 2
    assert "is not empty and is not an nvlm run" in error_line(result)
    assert "nothing" in error_line(result) or "neither" in error_line(result)
    assert (work / "a.txt").read_text() == "keep\n" and tree(work / "shards") == tree(bert_shards)


def test_out_equal_to_data_or_init_is_refused(bert_shards, finished, tmp_path):
    before = tree(bert_shards)
    result = invoke(*args(bert_shards, bert_shards, 4, "--overwrite"))
    assert result.exit_code == 2
    assert f"--out {bert_shards} is the input --data {bert_shards}" in error_line(result)
    assert tree(bert_shards) == before
    run = copy_run(finished, tmp_path / "run")
    result = invoke(*args(bert_shards, run, 4, "--init", str(run / "checkpoints" / "ckpt-20")))
    assert result.exit_code == 2 and "contains the input --init" in error_line(result)


def test_overwrite_clears_only_what_nvlm_wrote_in_its_own_run(bert_shards, finished, tmp_path):
    run = copy_run(finished, tmp_path / "run")
    (run / "notes.txt").write_text("mine\n")
    result = invoke(*args(bert_shards, run, 5, "--overwrite", "--json"))
    assert result.exit_code == 0, result.output
    assert (run / "notes.txt").read_text() == "mine\n"
    assert json.loads(result.stdout)["resumed_from_step"] == 0
    assert sorted(p.name for p in (run / "checkpoints").glob("*.index")) == ["ckpt-5.index"]
    # The old run's log went with it; this run's log is whole (cleared before it opened).
    assert "nvlm bert pretrain" in (run / "logs" / "run.log").read_text()


def test_overwrite_on_a_new_out_directory_just_trains(bert_shards, tmp_path):
    # A batch script passes --overwrite every time, the first time included.
    result = invoke(*args(bert_shards, tmp_path / "new", 2, "--overwrite"))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "new" / "checkpoints" / "ckpt-2.index").is_file()


def test_a_file_in_the_way_or_no_permission_is_one_line(bert_shards, tmp_path, monkeypatch):
    (tmp_path / "file").write_text("x")
    result = invoke(*args(bert_shards, tmp_path / "file" / "run", 4))
    assert result.exit_code == 2 and "is a file, not a directory" in error_line(result)
    # Root ignores permission bits: ask os.access, as the check does.
    real_access = os.access
    monkeypatch.setattr(
        os, "access", lambda path, mode: Path(path) != tmp_path and real_access(path, mode)
    )
    result = invoke(*args(bert_shards, tmp_path / "locked" / "run", 4))
    assert result.exit_code == 2 and "permission denied" in error_line(result)
    assert not (tmp_path / "locked").exists()


# -- resume ----------------------------------------------------------------------------------------
def test_garbled_pointer_truncated_latest_and_temp_leftovers_resume_from_the_last_good(
    bert_shards,
    finished,
    tmp_path,
):
    run = copy_run(finished, tmp_path / "run")
    ckpts = run / "checkpoints"
    expected = checkpoint_values(finished)
    (ckpts / "checkpoint").write_text("garbage{{\n")
    os.truncate(ckpts / "ckpt-20.data-00000-of-00001", 1000)
    (ckpts / "ckpt-25_temp").mkdir()
    (ckpts / "ckpt-25_temp" / "part-00000-of-00001.data-00000-of-00001").write_bytes(b"\0" * 10)
    metrics_15 = [
        ln
        for ln in (run / "metrics.jsonl").read_text().splitlines()
        if json.loads(ln)["step"] <= 15
    ]
    rerun = subprocess.run(
        command(bert_shards, run) + ["--json"], env=ENV, capture_output=True, text=True
    )
    assert rerun.returncode == 0, rerun.stderr
    assert "removed ckpt-25_temp" in rerun.stderr
    assert "skipped checkpoint ckpt-20 (a file is truncated); using ckpt-15" in rerun.stderr
    assert f"resuming {run} from step 15 of 20 (checkpoint ckpt-15)" in rerun.stderr
    assert not (ckpts / "ckpt-25_temp").exists()
    # The summary says which figures cover this invocation and which the whole run.
    assert "steps (whole run)" in rerun.stderr and "20 of 20" in rerun.stderr
    assert "training throughput (sequences/s) (this invocation)" in rerun.stderr
    assert "resumed from step" in rerun.stderr
    summary = json.loads(rerun.stdout)
    assert summary["resumed_from_step"] == 15 and summary["steps"] == 20
    got = checkpoint_values(run)
    for key in expected:
        np.testing.assert_allclose(got[key], expected[key], atol=1e-6, rtol=0, err_msg=key)
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert lines[: len(metrics_15)] == metrics_15 and json.loads(lines[-1])["step"] == 20


def test_no_restorable_checkpoint_is_refused_not_restarted(bert_shards, finished, tmp_path):
    run = copy_run(finished, tmp_path / "run")
    for data in (run / "checkpoints").glob("*.data-*"):
        os.truncate(data, 0)
    (run / "checkpoints" / "ckpt-10.index").unlink()
    before = tree(run)
    result = invoke(*args(bert_shards, run))
    assert result.exit_code == 2
    line = error_line(result)
    assert f"no checkpoint in {run / 'checkpoints'} restores completely" in line
    assert (
        "ckpt-20 (a file is truncated)" in line and "ckpt-10 (its .index file is missing)" in line
    )
    after = tree(run)
    after.pop(".lock", None), before.pop(".lock", None)
    assert after == before


def test_eval_and_convert_skip_a_damaged_latest_checkpoint(bert_shards, finished, tmp_path):
    run = copy_run(finished, tmp_path / "run")
    os.truncate(run / "checkpoints" / "ckpt-20.data-00000-of-00001", 100)
    result = invoke(
        "eval", "--model", "bert", "--task", "mlm", "--init", run, "--data", bert_shards
    )
    assert result.exit_code == 0, result.output
    assert "skipped checkpoint ckpt-20 (a file is truncated); using ckpt-15" in result.stderr
    result = invoke("convert", run, tmp_path / "hf", "--model", "bert", "--to", "hf")
    assert result.exit_code == 0, result.output
    assert "using ckpt-15" in result.stderr and (tmp_path / "hf" / "model.safetensors").exists()


@pytest.mark.slow
def test_repeated_kills_during_checkpoint_writes_and_a_garbled_pointer_end_like_an_uninterrupted_run(
    bert_shards,
    tmp_path,
):
    full, killed = tmp_path / "full", tmp_path / "killed"
    steps = 40
    # checkpoint_every=1: a kill at any moment is likely to land inside a save.
    extra = ("--set", "train.checkpoint_every=1")
    done = subprocess.run(command(bert_shards, full, steps, *extra), env=ENV, capture_output=True)
    assert done.returncode == 0
    rng = np.random.default_rng(13)
    kills = 0
    for _ in range(4):
        proc = subprocess.Popen(
            command(bert_shards, killed, steps, *extra),
            env=ENV,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        pointer = killed / "checkpoints" / "checkpoint"
        start = time.time()
        # Wait for this attempt's first save, then kill a random few milliseconds later.
        while time.time() - start < 120 and proc.poll() is None:
            if pointer.exists() and pointer.stat().st_mtime > start:
                break
            time.sleep(0.01)
        time.sleep(float(rng.uniform(0.0, 0.3)))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
        pointer.write_text("garbage{{")
    assert kills >= 3
    rerun = subprocess.run(
        command(bert_shards, killed, steps, *extra) + ["--json"],
        env=ENV,
        capture_output=True,
        text=True,
    )
    assert rerun.returncode == 0, rerun.stderr
    assert json.loads(rerun.stdout)["steps"] == steps
    a, b = checkpoint_values(full), checkpoint_values(killed)
    for key in a:
        np.testing.assert_allclose(b[key], a[key], atol=1e-6, rtol=0, err_msg=key)


def test_a_finished_run_reports_itself_complete_and_changes_nothing(
    bert_shards, finished, tmp_path
):
    run = copy_run(finished, tmp_path / "run")
    before = tree(run)
    result = invoke(*args(bert_shards, run), "--json")
    assert result.exit_code == 0, result.output
    assert f"{run} is already complete at step 20 (checkpoint ckpt-20)" in " ".join(
        result.stderr.split()
    )
    saved = json.loads((finished / "summary.json").read_text())
    reported = json.loads(result.stdout)
    assert reported["already_complete"] and reported["total_time_s"] == saved["total_time_s"] > 0
    after = tree(run)
    for volatile in (".lock", "logs/run.log"):  # the lock's holder line, the log of this call
        after.pop(volatile, None), before.pop(volatile, None)
    assert after == before


# -- locking and signals ---------------------------------------------------------------------------
def test_a_second_run_on_the_same_directory_is_refused_naming_the_holder(bert_shards, tmp_path):
    run = tmp_path / "run"
    first = subprocess.Popen(
        command(bert_shards, run, 100_000),
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not (run / "checkpoints").exists():
            time.sleep(0.1)
        result = invoke(*args(bert_shards, run, 100_000, "--set", "train.lr=0.004"))
        assert result.exit_code == 2
        assert f"run directory {run} is in use by nvlm PID {first.pid} on host" in error_line(
            result
        )
        config = (run / "config.yaml").read_text()
        assert "lr: 0.004" not in config
        first.send_signal(signal.SIGTERM)
        _, err = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 143, err.decode()[-2000:]
    text = err.decode()
    assert "nvlm: interrupted at step" in text and "re-run the same command to resume" in text
    step = int(text.split("nvlm: interrupted at step ")[1].split()[0])
    assert (run / "checkpoints" / f"ckpt-{step}.index").exists()


def test_ctrl_c_exits_130_after_the_checkpoint_and_the_rerun_says_it_resumes(bert_shards, tmp_path):
    run = tmp_path / "run"
    proc = subprocess.Popen(
        command(bert_shards, run, 100_000),
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    # A batch log: stderr is a pipe, so progress comes as plain lines while the run trains.
    first_line = b""
    deadline = time.time() + 120
    while time.time() < deadline and not first_line.startswith(b"step 5/100000"):
        first_line = proc.stderr.readline()
    assert first_line.startswith(b"step 5/100000 (0%)  loss "), first_line
    assert b"ETA" in first_line and proc.poll() is None
    proc.send_signal(signal.SIGINT)
    rest = proc.stderr.read().decode()
    proc.wait(timeout=120)
    assert proc.returncode == 130, rest[-2000:]
    step = int(rest.split("nvlm: interrupted at step ")[1].split()[0])
    log = (run / "logs" / "run.log").read_text()
    assert "step 5/100000 (0%)" in log and "interrupted" in log

    proc = subprocess.Popen(
        command(bert_shards, run, 100_000),
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    resumed = ""
    for raw in proc.stderr:
        if b"resuming" in raw:
            resumed = raw.decode()
        if raw.startswith(b"step "):  # training again
            break
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=120)
    assert f"resuming {run} from step {step} of 100000 (checkpoint ckpt-{step})" in resumed
    assert proc.returncode == 143


# -- console ----------------------------------------------------------------------------------------
def test_progress_keeps_step_and_eta_visible_at_80_columns(monkeypatch):
    from rich.console import Console

    from nvlm.train.progress import Progress

    screen = io.StringIO()
    monkeypatch.setattr(
        report,
        "_CONSOLE",
        Console(file=screen, force_terminal=True, width=80, color_system=None),
    )
    progress = Progress(1000, 0, enabled=True)
    figures = {
        "loss": 8.2521,
        "mlm_loss": 7.5,
        "mlm_acc": 0.01,
        "nsp_acc": 0.5,
        "lr": 1e-4,
        "seq_per_s": 123.4,
        "tok_per_s": 15795.2,
    }
    progress.update(400, figures)
    progress.close()
    # What the terminal shows: without cursor-control sequences (erase line, cursor up).
    shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen.getvalue())
    lines = [ln for ln in shown.splitlines() if ln.strip()]
    bar = [ln for ln in lines if "400/1000" in ln][-1]
    assert len(bar) <= 80 and ":" in bar.split("400/1000")[1]  # the ETA clock
    text = " ".join(lines)
    assert "…" not in text
    for shown in ("loss 8.252", "mlm_acc 0.01", "lr 1.00e-04", "seq/s 123.4", "tok/s 15,795"):
        assert shown in text


def test_run_directory_rules_in_isolation(tmp_path):
    """The policy without training: markers, clearing, locking (docs/reliability.md)."""
    run = tmp_path / "run"
    with run_dir.locked(run, {}):
        assert not run_dir.prepare(run, {"train": {}}, resume=True, overwrite=False)
        assert run_dir.is_nvlm_run(run)
        with pytest.raises(Exception, match="is in use by nvlm PID"):
            with run_dir.locked(run, {}):
                pass
    with run_dir.locked(run, {}):  # released when the block ends
        pass
    (run / "metrics.jsonl").write_text("")
    (run / "mine.txt").write_text("x")
    run_dir.clear(run)
    assert sorted(p.name for p in run.iterdir()) == [".lock", "mine.txt"]
    # A lock attempt that fails its checks leaves no directory behind.
    with pytest.raises(Exception, match="is the input"):
        with run_dir.locked(tmp_path / "new", {"--data": tmp_path / "new"}):
            pass
    assert not (tmp_path / "new").exists()


def test_convert_overwrite_replaces_only_nvlm_exports(finished, tmp_path):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "a.txt").write_text("keep\n")
    result = invoke("convert", finished, foreign, "--model", "bert", "--to", "hf", "--overwrite")
    assert result.exit_code == 2
    assert f"{foreign} is not one (no .nvlm marker); nothing was removed" in error_line(result)
    assert sorted(p.name for p in foreign.iterdir()) == ["a.txt"]

    result = invoke("convert", finished, finished, "--model", "bert", "--to", "hf", "--overwrite")
    assert result.exit_code == 2 and f"DST {finished} is the input SRC" in error_line(result)

    export = tmp_path / "hf"
    for _ in range(2):  # the second time over its own export
        result = invoke("convert", finished, export, "--model", "bert", "--to", "hf", "--overwrite")
        assert result.exit_code == 0, result.output
    assert (export / "model.safetensors").exists() and (export / ".nvlm").exists()
