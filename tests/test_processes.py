"""Nothing outlives the nvlm process that launched a job, and an interrupted job says so.

- the launcher dies with the parent (PR_SET_PDEATHSIG) and each rank of the parent's host leaves
  once the parent is gone (nvlm.launch.parent_watch), SIGKILL of the parent included;
- Ctrl-C / SIGTERM to the parent: the ranks checkpoint and end cleanly, the parent exits 130 /
  143 (not 0) with one line; a second Ctrl-C ends the job at once, still 130;
- after the parent was SIGKILLed, re-running the same command resumes.

The fast tests use fake launchers and ranks (bash and small Python scripts: no TensorFlow, no
Horovod); the slow ones run `nvlm pretrain --gpus 2` under horovodrun and mpirun.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nvlm.launch.parent_watch import SUPERVISOR_VARIABLE, ParentWatch, identity, process_start

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
for _var in ("NVLM_CHILD", "OMPI_COMM_WORLD_RANK", "HOROVOD_RANK", "PMI_RANK", "SLURM_JOB_ID"):
    ENV.pop(_var, None)
ENV.pop(SUPERVISOR_VARIABLE, None)


def survivors(needle: str) -> list[str]:
    """Command lines of the live processes (zombies excluded) that mention `needle`."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if needle in cmdline and process_start(int(entry)) is not None:
            found.append(f"{entry}: {cmdline[:160]}")
    return found


def wait_until_none_survive(needle: str, seconds: float) -> tuple[float, list[str]]:
    """(seconds it took, what still runs after `seconds`)."""
    t0 = time.monotonic()
    while survivors(needle) and time.monotonic() - t0 < seconds:
        time.sleep(0.1)
    return time.monotonic() - t0, survivors(needle)


def end_all(needle: str) -> None:
    """Clean-up after a failed assertion: SIGKILL what a test left running."""
    for line in survivors(needle):
        try:
            os.kill(int(line.split(":")[0]), signal.SIGKILL)
        except ProcessLookupError:
            pass


def wait_for(predicate, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


# --- the parent's identity ----------------------------------------------------------------------


def test_a_rank_watches_only_a_parent_it_can_see():
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        me = identity(sleeper.pid)
        pid, start, host = me.split(":", 2)
        assert ParentWatch({SUPERVISOR_VARIABLE: me}).visible
        # The same PID with another start time is another process (a recycled PID).
        assert not ParentWatch({SUPERVISOR_VARIABLE: f"{pid}:{int(start) + 1}:{host}"}).visible
        # A parent on another host (horovodrun passes its environment to remote ranks too).
        assert not ParentWatch({SUPERVISOR_VARIABLE: f"{pid}:{start}:not-{host}"}).visible
        for value in ("", "garbage", f"{pid}::{host}"):
            assert not ParentWatch({SUPERVISOR_VARIABLE: value}).start()
    finally:
        sleeper.kill()
        sleeper.wait()
    assert host == socket.gethostname()
    assert not ParentWatch({SUPERVISOR_VARIABLE: me}).visible  # gone


WATCHING_RANK = """
import signal, sys, time
from pathlib import Path
from nvlm.launch.parent_watch import ParentWatch
signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a rank that cannot stop (stuck in a collective)
mark = Path(sys.argv[1])
watching = ParentWatch(poll_s=0.1, grace_s=0.5, before_exit=mark.write_text).start()
print("watching" if watching else "not watching", flush=True)
time.sleep(600)
"""


def test_a_rank_ends_once_the_parent_is_gone(tmp_path):
    parent = subprocess.Popen(["sleep", "600"])
    mark = tmp_path / "before-exit.txt"
    rank = subprocess.Popen(
        [sys.executable, "-c", WATCHING_RANK, str(mark)],
        env={**ENV, SUPERVISOR_VARIABLE: identity(parent.pid)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert rank.stdout.readline() == "watching\n"
        time.sleep(1)
        assert rank.poll() is None  # the parent lives: so does the rank
        parent.kill()  # left a zombie (not reaped yet): gone all the same
        t0 = time.monotonic()
        _, stderr = rank.communicate(timeout=10)
        took = time.monotonic() - t0
    finally:
        rank.kill()
        parent.kill()
        parent.wait()
    assert rank.returncode == 1 and took < 3, (rank.returncode, took)
    said = f"the nvlm process that started this job (PID {parent.pid}) has ended"
    assert f"nvlm: {said}; this rank ends in 0.5 s" in stderr
    # Where it hung, for the record (faulthandler's dump of every thread).
    assert "ending this rank, which was still at:" in stderr and "in <module>" in stderr
    assert mark.read_text() == said


# --- fake jobs: a bash "launcher", Python "ranks", the real parent (`_supervise`) ---------------

FAKE_RANK = """
import json, os, signal, sys, time
from pathlib import Path
from nvlm.launch.parent_watch import ParentWatch
from nvlm.launch.rank_log import RankLog
rank, run, mode = int(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
log = RankLog(run, rank)
log.redirect()
log.started()
ParentWatch(poll_s=0.1, grace_s=1.0, before_exit=log.orphaned).start()
stops = []
signal.signal(signal.SIGTERM, lambda signum, frame: stops.append(signum))
if mode == "stuck":  # stuck in a collective: no signal gets it out
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    stops = [None]
    time.sleep(600)
if mode == "self":  # the ranks themselves are signalled (Slurm's --signal)
    os.kill(os.getpid(), signal.SIGTERM)
while not stops:
    time.sleep(0.02)
if rank == 0:  # what train_run leaves after an agreed stop
    ckpt = str(run / "checkpoints" / "ckpt-7")
    summary = {"interrupted": True, "signal": stops[0], "steps": 7, "total_steps": 100,
               "checkpoint": ckpt}
    (run / "summary.json").write_text(json.dumps(summary))
log.finished(0)
"""

FAKE_PARENT = """
import json, sys
from pathlib import Path
from nvlm.launch.training import TrainingJob, _supervise
from nvlm.errors import RunFailed
from nvlm.launch.command import LaunchCommand
run, launcher = Path(sys.argv[1]), sys.argv[2]
job = TrainingJob(command=[], run=run, resolve=None, train=None)
print("started", flush=True)
try:
    summary = _supervise(LaunchCommand(["bash", "-c", launcher], {}), job, 2)
except RunFailed as exc:  # as nvlm.cli.main reports it
    sys.stderr.write(f"nvlm: {exc}\\n")
    sys.exit(exc.exit_code)
print(json.dumps(summary))
"""


def start_fake_job(
    tmp_path: Path, mode: str, linger: bool = False
) -> tuple[subprocess.Popen, Path]:
    """A parent running `_supervise` over a bash launcher of 2 fake ranks, both running. A
    `linger`ing launcher outlives its ranks (only its parent's death ends it)."""
    rank_py, parent_py = tmp_path / "rank.py", tmp_path / "parent.py"
    rank_py.write_text(FAKE_RANK)
    parent_py.write_text(FAKE_PARENT)
    run = tmp_path / "run"
    ranks = " & ".join(
        f"{shlex.quote(sys.executable)} {rank_py} {r} {run} {mode}" for r in range(2)
    )
    launcher = f"{ranks} & wait"
    if linger:
        launcher += f"; exec {shlex.quote(sys.executable)} -c 'import time; time.sleep(600)' {run}"
    parent = subprocess.Popen(
        [sys.executable, str(parent_py), str(run), launcher],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert parent.stdout.readline() == "started\n"
    logs = run / "logs"
    wait_for(lambda: len(list(logs.glob("rank-*.status.json"))) == 2, 20, "the ranks")
    return parent, run


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_to_the_parent_stops_the_ranks_and_exits_128_plus_it(tmp_path, signum, code):
    parent, run = start_fake_job(tmp_path, "wait")
    try:
        time.sleep(0.3)
        parent.send_signal(signum)
        _, stderr = parent.communicate(timeout=30)
    finally:
        end_all(str(run))
    assert parent.returncode == code, stderr
    assert stderr.strip().splitlines()[-1] == (
        f"nvlm: interrupted at step 7 of 100; checkpoint {run}/checkpoints/ckpt-7 saved, "
        "re-run the same command to resume"
    )
    states = {json.loads(p.read_text())["state"] for p in (run / "logs").glob("*.status.json")}
    assert states == {"ok"}


def test_ranks_stopped_by_their_own_signal_exit_143(tmp_path):
    parent, run = start_fake_job(tmp_path, "self")
    _, stderr = parent.communicate(timeout=30)
    assert parent.returncode == 143, stderr
    assert "nvlm: interrupted at step 7 of 100" in stderr


def test_a_second_ctrl_c_ends_a_stuck_job_at_once_and_exits_130(tmp_path):
    parent, run = start_fake_job(tmp_path, "stuck")
    try:
        parent.send_signal(signal.SIGINT)
        time.sleep(0.5)
        assert parent.poll() is None  # the first one waits for the ranks' checkpoint
        parent.send_signal(signal.SIGINT)
        _, stderr = parent.communicate(timeout=30)
        left = survivors(str(run))
    finally:
        end_all(str(run))
    assert parent.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1] == (
        f"nvlm: interrupted before the job could save a checkpoint (logs: {run}/logs); "
        "re-run the same command to start"
    )
    assert left == []


def test_nothing_outlives_a_killed_parent(tmp_path):
    # The ranks ignore SIGTERM (stuck): bash, the launcher, goes with the parent (PDEATHSIG);
    # the ranks, orphans then, end through their watch.
    parent, run = start_fake_job(tmp_path, "stuck", linger=True)
    try:
        assert len(survivors(str(run))) == 4  # the parent, bash and 2 ranks
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        took, left = wait_until_none_survive(str(run), 10)
    finally:
        end_all(str(run))
    assert left == [] and took < 5, (took, left)
    for rank in (0, 1):
        status = json.loads((run / "logs" / f"rank-{rank}.status.json").read_text())
        assert status["state"] == "failed"
        assert status["error"] == (
            f"the nvlm process that started this job (PID {parent.pid}) has ended"
        )


# --- real jobs: nvlm pretrain --gpus 2 under horovodrun and mpirun ------------------------------


def _horovod():
    try:
        import horovod.tensorflow as hvd
    except ImportError:
        return None
    return hvd


HVD = _horovod()
needs_horovod = pytest.mark.skipif(HVD is None, reason="Horovod is built by `make horovod`")
MPIRUN = HVD is not None and shutil.which("mpirun") is not None and HVD.mpi_built()
needs_mpi = pytest.mark.skipif(not MPIRUN, reason="needs mpirun and Horovod's MPI controller")


def long_pretrain(shards: Path, out: Path, launcher: str) -> list[str]:
    """A 2-rank run far longer than the test waits (tiny BERT: ~20 steps/s here)."""
    return [
        sys.executable, "-m", "nvlm", "pretrain", "--model", "bert", "--preset", "cpu-fp32",
        "--data", str(shards), "--out", str(out), "--steps", "5000", "--gpus", "2",
        "--launcher", launcher, "--set", "model.size=tiny", "--set", "train.batch_size=2",
        "--set", "train.accumulation=1", "--set", "train.checkpoint_every=5",
        "--set", "train.log_every=5",
    ]  # fmt: skip


def start(command: list[str], stderr: Path) -> subprocess.Popen:
    with stderr.open("wb") as err:  # a file, not a pipe nobody reads while the run goes on
        return subprocess.Popen(command, env=ENV, stdout=subprocess.DEVNULL, stderr=err)


def newest_checkpoint(run: Path) -> int:
    steps = [int(p.name[5:-6]) for p in (run / "checkpoints").glob("ckpt-*.index")]
    return max(steps, default=0)


@pytest.mark.slow
@pytest.mark.horovod
@needs_horovod
@pytest.mark.parametrize("launcher", ["horovodrun", pytest.param("mpirun", marks=needs_mpi)])
def test_a_killed_parent_leaves_nothing_running_and_the_same_command_resumes(
    launcher, rank_shards, tmp_path
):
    out = tmp_path / "run"
    command = long_pretrain(rank_shards, out, launcher)
    try:
        # 1. SIGKILL of the parent once the first checkpoint is written: the launcher and both
        #    ranks are gone within 10 s, and nothing writes checkpoints any more.
        parent = start(command, tmp_path / "first.err")
        wait_for(lambda: newest_checkpoint(out) >= 5 or parent.poll() is not None, 240, "ckpt-5")
        assert parent.poll() is None, (tmp_path / "first.err").read_text()[-3000:]
        assert any(launcher in line for line in survivors(str(out)))
        parent.kill()
        parent.wait()
        took, left = wait_until_none_survive(str(out), 10)
        assert left == [], f"still running {took:.0f} s after the parent's SIGKILL: {left}"
        killed_at = newest_checkpoint(out)
        time.sleep(1)
        assert newest_checkpoint(out) == killed_at

        # 2. The same command resumes; SIGTERM to its parent: the ranks stop after the same step,
        #    rank 0 checkpoints, all end cleanly and the parent exits 143 with one line.
        parent = start(command, tmp_path / "second.err")
        wait_for(
            lambda: newest_checkpoint(out) > killed_at or parent.poll() is not None, 240, "resume"
        )
        parent.send_signal(signal.SIGTERM)
        parent.wait(timeout=120)
        stderr = (tmp_path / "second.err").read_text()
        assert parent.returncode == 143, stderr[-3000:]
        summary = json.loads((out / "summary.json").read_text())
        assert summary["interrupted"] and summary["signal"] == signal.SIGTERM
        assert 5 <= summary["resumed_from_step"] <= killed_at < summary["steps"], summary
        assert stderr.strip().splitlines()[-1] == (
            f"nvlm: interrupted at step {summary['steps']} of 5000; checkpoint "
            f"{out}/checkpoints/ckpt-{summary['steps']} saved, re-run the same command to resume"
        )
        assert newest_checkpoint(out) == summary["steps"]
        logs = out / "logs"
        assert {
            json.loads((logs / f"rank-{r}.status.json").read_text())["state"] for r in (0, 1)
        } == {"ok"}
        # The killed attempt's logs were kept.
        assert "step 5/5000" in (logs / "rank-0.log.1").read_text()
        assert (logs / "rank-1.log.1").exists()
        assert wait_until_none_survive(str(out), 10)[1] == []
    finally:
        end_all(str(out))
