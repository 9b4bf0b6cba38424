"""Data-parallel training end to end: 2 CPU processes under horovodrun (Gloo) and mpirun.

- 2 ranks x micro-batch b end with the weights of 1 process x micro-batch 2b (dropout off);
- a dead rank ends the whole job, non-zero, naming the rank and its log, without hanging;
- a run killed on 2 ranks resumes on 2 ranks (same weights as an uninterrupted run) and on 1;
- Ctrl-C stops every rank after the same step with a checkpoint, and the run resumes.

Why equal weights are expected: rank r takes every 2nd example of each global micro-batch
(nvlm.data.examples), so step k sees the same examples on 1 or 2 processes, and each rank's
loss is its share of the step's mean (train.loss_normalization=step_tokens). These shards have
the same number of masked tokens in every example (conftest.py's `rank_shards`), so the
equality holds in the reference's micro_batch normalisation too; shards with varying counts
are tests/test_step_normalization.py's. docs/distributed.md has the numbers.

One more task (e.g. SQuAD fine-tuning) is one more entry in CASES.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pytest
from helpers import checkpoint_values, invoke, ok

hvd = pytest.importorskip("horovod.tensorflow", reason="Horovod is built by `make horovod`")
pytestmark = [pytest.mark.horovod, pytest.mark.slow]

STEPS = 6
MICRO = 4  # per rank on 2 ranks; 1 process takes 2 x MICRO
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
for _var in ("NVLM_CHILD", "OMPI_COMM_WORLD_RANK", "HOROVOD_RANK", "PMI_RANK", "SLURM_JOB_ID"):
    ENV.pop(_var, None)
MPIRUN = shutil.which("mpirun") is not None and hvd.mpi_built()
needs_mpi = pytest.mark.skipif(not MPIRUN, reason="needs mpirun and Horovod's MPI controller")


@dataclass(frozen=True)
class Case:
    """A training command that must give the same weights on 1 and 2 processes."""

    data: str  # the fixture that makes its data
    args: Callable[[Path, Path, int], list[str]]  # (data, out, processes) -> nvlm argv


def bert_pretrain(data: Path, out: Path, processes: int) -> list[str]:
    return [
        "pretrain", "--model", "bert", "--preset", "cpu-fp32", "--data", str(data),
        "--out", str(out), "--steps", str(STEPS), "--gpus", str(processes),
        "--set", "model.size=tiny", "--set", "model.dropout=0",
        "--set", "model.attention_dropout=0", "--set", f"train.batch_size={MICRO * 2 // processes}",
        "--set", "train.accumulation=1", "--set", "train.warmup_steps=2",
        "--set", "train.checkpoint_every=2", "--set", "train.log_every=2",
    ]  # fmt: skip


SQUAD_TRAIN = Path(__file__).parent / "fixtures" / "squad" / "tiny-v1.1.json"


def bert_squad(init: Path, out: Path, processes: int) -> list[str]:
    # SQuAD's loss is a mean of per-example losses, so rank-averaged gradients are exact.
    return [
        "finetune", "--model", "bert", "--task", "squad", "--version", "1.1",
        "--data", str(SQUAD_TRAIN), "--init", str(init), "--out", str(out),
        "--preset", "cpu-fp32", "--gpus", str(processes),
        "--set", "model.dropout=0", "--set", "model.attention_dropout=0",
        "--set", "data.seq_len=64", "--set", "data.doc_stride=32",
        "--set", "data.max_query_len=24", "--set", "train.epochs=null",
        "--set", f"train.steps={STEPS}", "--set", "train.warmup_proportion=null",
        "--set", "train.warmup_steps=2", "--set", f"train.batch_size={MICRO * 2 // processes}",
        "--set", "train.accumulation=1", "--set", "train.lr=1e-3",
        "--set", "train.lr_per_gpu=false", "--set", "train.log_every=2",
    ]  # fmt: skip


CASES = {
    "bert-pretrain": Case("rank_shards", bert_pretrain),
    # Fine-tunes the 1-process BERT run above.
    "bert-squad": Case("one_process", bert_squad),
}


# --- helpers ----------------------------------------------------------------------------------


def nvlm(*args: str, launcher: str | None = None) -> dict:
    """Run nvlm in this process (the launched ranks are new processes); return the summary."""
    argv = [*args, "--json"] + (["--launcher", launcher] if launcher else [])
    return json.loads(ok(invoke(*argv)).stdout)


def nvlm_process(*args: str, env: dict | None = None, timeout: float = 300):
    """Run nvlm as a separate process (for crashes): (CompletedProcess, its end as time.time()).

    The timeout only turns a hang into a failure; it is generous for loaded CI machines."""
    proc = subprocess.run(
        [sys.executable, "-m", "nvlm", *args],
        env={**ENV, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return proc, time.time()


def assert_same_weights(a: Path, b: Path, atol: float = 1e-5) -> None:
    wa, wb = checkpoint_values(a), checkpoint_values(b)
    assert wa.keys() == wb.keys() and len(wa) > 10
    for key in wa:
        np.testing.assert_allclose(wb[key], wa[key], atol=atol, rtol=0, err_msg=key)


def statuses(run: Path) -> dict[int, str]:
    out = {}
    for path in (run / "logs").glob("rank-*.status.json"):
        status = json.loads(path.read_text())
        out[status["rank"]] = status["state"]
    return out


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("runs")


@pytest.fixture(scope="module")
def one_process(rank_shards, runs) -> Path:
    out = runs / "one"
    summary = nvlm(*bert_pretrain(rank_shards, out, 1))
    assert summary["steps"] == STEPS and summary["global_batch"] == 2 * MICRO
    return out


@pytest.fixture(scope="module")
def two_ranks_gloo(rank_shards, runs) -> Path:
    out = runs / "two-gloo"
    summary = nvlm(*bert_pretrain(rank_shards, out, 2), launcher="horovodrun")
    assert summary["processes"] == 2 and summary["global_batch"] == 2 * MICRO
    return out


@pytest.fixture(scope="module")
def killed_on_two_ranks(rank_shards, runs):
    """A 2-rank run whose rank 1 is SIGKILLed at the start of step 5 (checkpoints at 2 and 4)."""
    out = runs / "killed"
    launcher = "mpirun" if MPIRUN else "horovodrun"
    proc, ended = nvlm_process(
        *bert_pretrain(rank_shards, out, 2), "--launcher", launcher,
        env={"NVLM_TEST_CRASH_RANK": "1", "NVLM_TEST_CRASH_STEP": "5",
             "NVLM_TEST_CRASH_MODE": "kill"})  # fmt: skip
    return out, proc, ended


# --- equivalence ------------------------------------------------------------------------------


def test_every_example_has_the_same_number_of_masked_tokens(rank_shards):
    # The precondition of comparing weights within 1e-5 (see the module docstring).
    for path in sorted(rank_shards.glob("*.hdf5")):
        with h5py.File(path, "r") as f:
            counts = (f["masked_lm_positions"][:] != 0).sum(axis=1)
        assert set(counts.tolist()) == {5}, path


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("launcher", ["horovodrun", pytest.param("mpirun", marks=needs_mpi)])
def test_two_ranks_end_with_the_weights_of_one_process(case, launcher, request, runs):
    spec = CASES[case]
    data = request.getfixturevalue(spec.data)
    if case == "bert-pretrain" and launcher == "horovodrun":
        two = request.getfixturevalue("two_ranks_gloo")  # shared with the resume tests
    else:
        two = runs / f"{case}-{launcher}"
        summary = nvlm(*spec.args(data, two, 2), launcher=launcher)
        assert summary["processes"] == 2
    one = request.getfixturevalue("one_process") if case == "bert-pretrain" else None
    if one is None:
        one = runs / f"{case}-one"
        if not (one / "summary.json").exists():  # made once, for both launchers
            nvlm(*spec.args(data, one, 1))
    assert_same_weights(one, two, atol=1e-5)
    # Rank 0 owns the run directory; rank 1 logged to its own file.
    assert statuses(two) == {0: "ok", 1: "ok"}
    assert (two / "metrics.jsonl").exists()
    # Each CPU process got its share of the cores.
    threads = max(1, len(os.sched_getaffinity(0)) // 2)
    assert (
        f"rank 1 of 2 (local 1 of 2), Horovod {'gloo' if launcher == 'horovodrun' else 'mpi'}, "
        f"CPU, {threads} thread(s)" in (two / "logs" / "rank-1.log").read_text()
    )
    summary = json.loads((two / "summary.json").read_text())
    assert summary["throughput_seq_per_s_per_process"] == pytest.approx(
        summary["throughput_seq_per_s"] / 2, rel=1e-3
    )
    # The logged figures are the whole global batch's (averaged over ranks), not rank 0's share.
    final_one = json.loads((one / "summary.json").read_text())["final"]
    assert summary["final"]["loss"] == pytest.approx(final_one["loss"], abs=1e-4)


# --- a dead rank --------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["kill", "raise"])
def test_a_dead_rank_ends_the_job_and_is_named(mode, rank_shards, runs, request):
    if mode == "kill":
        out, proc, ended = request.getfixturevalue("killed_on_two_ranks")
    else:  # an exception in rank 1, under horovodrun (Gloo)
        out = runs / "raised"
        proc, ended = nvlm_process(
            *bert_pretrain(rank_shards, out, 2), "--launcher", "horovodrun",
            env={"NVLM_TEST_CRASH_RANK": "1", "NVLM_TEST_CRASH_STEP": "3"})  # fmt: skip
    assert proc.returncode == 1, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("nvlm: error: rank 1 failed"), proc.stderr[-3000:]
    assert str(out / "logs" / "rank-1.log") in last
    if mode == "raise":
        assert "RuntimeError: injected crash on rank 1 at step 3" in last
        assert "injected crash" in (out / "logs" / "rank-1.log").read_text()
    else:
        assert "killed by a signal" in last
    # Rank 1 wrote its last line (NVLM_TEST_CRASH..., or the traceback) as it failed: from then on
    # the job must end within the parent's grace period (30 s) and some slack, not hang.
    seconds = ended - (out / "logs" / "rank-1.log").stat().st_mtime
    assert seconds < 45, f"the job took {seconds:.0f} s to end after rank 1 failed"


def test_a_run_killed_on_two_ranks_resumes_on_two(
    killed_on_two_ranks, two_ranks_gloo, rank_shards, runs
):
    killed, proc, _ = killed_on_two_ranks
    assert proc.returncode == 1
    out = runs / "resumed-two"
    shutil.copytree(killed, out)
    summary = nvlm(*bert_pretrain(rank_shards, out, 2))
    # Rank 0 may have been killed while writing checkpoint 4: the pointer then names 2.
    assert summary["resumed_from_step"] in (2, 4) and summary["steps"] == STEPS
    assert_same_weights(two_ranks_gloo, out, atol=1e-5)


def test_a_two_rank_checkpoint_resumes_on_one_process(
    killed_on_two_ranks, one_process, rank_shards, runs
):
    killed, _, _ = killed_on_two_ranks
    out = runs / "resumed-one"
    shutil.copytree(killed, out)
    summary = nvlm(*bert_pretrain(rank_shards, out, 1))
    assert summary["resumed_from_step"] in (2, 4) and summary["processes"] == 1
    assert_same_weights(one_process, out, atol=1e-5)


# --- Ctrl-C -------------------------------------------------------------------------------------


def test_ctrl_c_stops_every_rank_after_the_same_step_then_resumes(
    rank_shards, two_ranks_gloo, runs
):
    out = runs / "interrupted"
    launcher = "mpirun" if MPIRUN else "horovodrun"
    args = [
        *bert_pretrain(rank_shards, out, 2),
        "--launcher",
        launcher,
        "--set",
        "train.checkpoint_every=100",
    ]  # only the stop writes one
    parent = subprocess.Popen(
        [sys.executable, "-m", "nvlm", *args],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    metrics = out / "metrics.jsonl"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and parent.poll() is None:
        if metrics.exists() and metrics.read_text().strip():  # step 2 is done
            break
        time.sleep(0.05)
    parent.send_signal(signal.SIGINT)
    _, stderr = parent.communicate(timeout=300)
    # Exit 130 (the checkpoint saved; the run did not finish), and one line that says so.
    assert parent.returncode == 130, stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["interrupted"] and 2 <= summary["steps"] < STEPS, summary
    last = stderr.strip().splitlines()[-1]
    assert last.startswith(f"nvlm: interrupted at step {summary['steps']} of {STEPS}; "), last
    assert statuses(out) == {0: "ok", 1: "ok"}
    resumed = nvlm(
        *bert_pretrain(rank_shards, out, 2),
        "--set",
        "train.checkpoint_every=100",
        launcher=launcher,
    )
    assert resumed["resumed_from_step"] == summary["steps"] and resumed["steps"] == STEPS
    assert_same_weights(two_ranks_gloo, out, atol=1e-5)
