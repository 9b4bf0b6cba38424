"""The launcher command lines (pure functions), hosts and hostfiles, rank variables, and
`nvlm pretrain --dry-run` / launcher errors through the CLI. Nothing here starts a process."""

from __future__ import annotations

import os
import shlex
import stat
from pathlib import Path

import pytest
from helpers import invoke

from nvlm.errors import UserError
from nvlm.launch import ranks
from nvlm.launch.command import (
    LaunchPlan,
    build_command,
    choose_launcher,
    default_controller,
    exported_names,
)
from nvlm.launch.hosts import Host, parse_hosts, read_hostfile
from nvlm.launch.job import _launcher_rank

PROGRAM = ("/venv/bin/python", "-m", "nvlm", "pretrain", "--config", "/runs/a/config.yaml")
ENV = {
    "PATH": "/venv/bin:/usr/bin",
    "LD_LIBRARY_PATH": "/usr/local/cuda/lib64",
    "HOME": "/root",
    "NVLM_PRESET_PATH": "/presets",
    "NCCL_SOCKET_IFNAME": "eth0",
    "HOROVOD_CYCLE_TIME": "5",
    "SECRET_TOKEN": "x",
}


def plan(launcher: str, processes: int = 2, **kw) -> LaunchPlan:
    return LaunchPlan(
        launcher=launcher, processes=processes, program=PROGRAM, env=kw.pop("env", ENV), **kw
    )


# --- mpirun ---------------------------------------------------------------------------------


def test_mpirun_single_node_as_root_carries_the_reference_flags():
    cmd = build_command(plan("mpirun", 8, as_root=True))
    assert cmd.argv == [
        "mpirun", "-np", "8", "-H", "localhost:8", "--bind-to", "none", "--map-by", "slot",
        "-mca", "pml", "ob1", "-mca", "btl", "^openib",
        "-x", "NCCL_DEBUG=WARN", "-x", "NVLM_CHILD=1",
        "-x", "HOROVOD_CYCLE_TIME", "-x", "LD_LIBRARY_PATH", "-x", "NCCL_SOCKET_IFNAME",
        "-x", "NVLM_PRESET_PATH", "-x", "PATH",
        "--allow-run-as-root", *PROGRAM,
    ]  # fmt: skip
    assert cmd.env == {}
    # What --dry-run prints runs as it is in a shell.
    assert shlex.split(cmd.render()) == cmd.argv


def test_mpirun_multi_node_fills_slots_in_order_and_keeps_nccl_debug():
    hosts = (Host("node1", 8), Host("node2", 8))
    argv = build_command(plan("mpirun", 12, hosts=hosts, env={**ENV, "NCCL_DEBUG": "INFO"})).argv
    assert argv[argv.index("-np") + 1] == "12"
    assert argv[argv.index("-H") + 1] == "node1:8,node2:4"
    assert "NCCL_DEBUG=INFO" in argv and "--allow-run-as-root" not in argv
    assert "HOME" not in argv and "SECRET_TOKEN" not in argv


def test_mpirun_cpu_workers_yield_when_idle():
    argv = build_command(plan("mpirun", cpu_workers=True)).argv
    i = argv.index("mpi_yield_when_idle")
    assert argv[i - 1] == "-mca" and argv[i + 1] == "1"


def test_exported_names_are_the_remote_ranks_needs():
    assert exported_names(ENV) == [
        "HOROVOD_CYCLE_TIME",
        "LD_LIBRARY_PATH",
        "NCCL_SOCKET_IFNAME",
        "NVLM_PRESET_PATH",
        "PATH",
    ]


# --- horovodrun -----------------------------------------------------------------------------


@pytest.mark.parametrize("controller", ["gloo", "mpi"])
def test_horovodrun_single_node(controller):
    cmd = build_command(plan("horovodrun", 2, controller=controller))
    assert cmd.argv == ["horovodrun", "-np", "2", "-H", "localhost:2", f"--{controller}", *PROGRAM]
    assert cmd.env == {"NVLM_CHILD": "1"}
    assert cmd.render().startswith("NVLM_CHILD=1 horovodrun -np 2 ")


def test_horovodrun_multi_node_with_the_mpi_controller_on_cpu_workers():
    hosts = tuple(parse_hosts("node1:4,node2:4"))
    cmd = build_command(
        plan(
            "horovodrun",
            8,
            hosts=hosts,
            controller="mpi",
            cpu_workers=True,
            executable="/venv/bin/horovodrun",
        )
    )
    assert cmd.argv[:6] == ["/venv/bin/horovodrun", "-np", "8", "-H", "node1:4,node2:4", "--mpi"]
    assert cmd.env["OMPI_MCA_mpi_yield_when_idle"] == "1"


def test_default_controller_is_gloo_and_mpi_needs_mpi_built():
    assert default_controller("auto", lambda: True) == "gloo"
    assert default_controller("mpi", lambda: True) == "mpi"
    with pytest.raises(UserError, match="without MPI"):
        default_controller("mpi", lambda: False)
    with pytest.raises(UserError, match="unknown controller"):
        default_controller("nccl", lambda: True)


# --- srun -----------------------------------------------------------------------------------


def test_srun_inside_an_allocation():
    cmd = build_command(plan("srun", 16))
    assert cmd.argv == [
        "srun",
        "--mpi=pmi2",
        "--ntasks",
        "16",
        "--kill-on-bad-exit=1",
        "--export=ALL,NVLM_CHILD=1",
        *PROGRAM,
    ]


def test_srun_on_named_nodes_and_another_pmi():
    hosts = (Host("gpu01", 8), Host("gpu02", 8), Host("gpu03", 8))
    cmd = build_command(
        plan("srun", 16, hosts=hosts, env={"NVLM_SRUN_MPI": "pmix"}, cpu_workers=True)
    )
    assert cmd.argv[:10] == [
        "srun",
        "--mpi=pmix",
        "--ntasks",
        "16",
        "--nodes",
        "2",
        "--ntasks-per-node",
        "8",
        "--nodelist",
        "gpu01,gpu02",
    ]
    assert "--export=ALL,NVLM_CHILD=1,OMPI_MCA_mpi_yield_when_idle=1" in cmd.argv


def test_srun_refuses_unequal_slots():
    with pytest.raises(UserError, match="same number of tasks"):
        build_command(plan("srun", 12, hosts=(Host("a", 8), Host("b", 8))))


# --- plan errors and the choice of launcher ----------------------------------------------------


def test_more_processes_than_slots():
    with pytest.raises(UserError, match="needs more slots"):
        build_command(plan("mpirun", 17, hosts=(Host("a", 8), Host("b", 8))))


def test_zero_processes():
    with pytest.raises(UserError, match="at least 1"):
        build_command(plan("mpirun", 0))


def found(*names: str):
    return lambda name: f"/usr/bin/{name}" if name in names else None


@pytest.mark.parametrize(("env", "installed", "expected"), [
    ({"SLURM_JOB_ID": "42"}, ("srun", "horovodrun", "mpirun"), "srun"),
    ({}, ("srun", "horovodrun", "mpirun"), "horovodrun"),
    ({}, ("mpirun",), "mpirun"),
    ({"SLURM_JOB_ID": "42"}, ("mpirun",), "mpirun"),
])  # fmt: skip
def test_auto_prefers_srun_in_slurm_then_horovodrun_then_mpirun(env, installed, expected):
    assert choose_launcher("auto", env, found(*installed)) == expected


def test_launcher_errors():
    with pytest.raises(UserError, match="no launcher found"):
        choose_launcher("auto", {}, found())
    with pytest.raises(UserError, match="unknown launcher 'pdsh'"):
        choose_launcher("pdsh", {}, found("mpirun"))
    with pytest.raises(UserError, match="launcher srun is not installed"):
        choose_launcher("srun", {}, found("mpirun"))
    assert choose_launcher("none", {}, found()) == "none"


# --- hosts and hostfiles --------------------------------------------------------------------


def test_parse_hosts():
    assert parse_hosts("node1:8, node2:4") == [Host("node1", 8), Host("node2", 4)]
    assert parse_hosts("10.0.0.1:2") == [Host("10.0.0.1", 2)]


@pytest.mark.parametrize(("text", "message"), [
    ("node1", "is not host:slots"),
    ("node1:eight", "is not host:slots"),
    ("node1:8,", "is not host:slots"),
    ("node1:0", "has 0 slots"),
    ("node1:8,node1:8", "listed twice"),
])  # fmt: skip
def test_bad_hosts(text, message):
    with pytest.raises(UserError, match=message):
        parse_hosts(text)


def test_read_hostfile_in_both_formats(tmp_path):
    path = tmp_path / "hosts"
    path.write_text(
        "# the nodes of the job\nnode1 slots=8\n\nnode2 slots = 8 max_slots=8  # x\nnode3:4\n"
    )
    assert read_hostfile(path) == [Host("node1", 8), Host("node2", 8), Host("node3", 4)]


def test_bad_hostfiles(tmp_path):
    with pytest.raises(UserError, match="not found"):
        read_hostfile(tmp_path / "missing")
    (tmp_path / "bad").write_text("node1 slots=8\nnode2 cpus=8\n")
    with pytest.raises(UserError, match="line 2: 'node2 cpus=8'"):
        read_hostfile(tmp_path / "bad")
    (tmp_path / "empty").write_text("# nothing\n")
    with pytest.raises(UserError, match="lists no hosts"):
        read_hostfile(tmp_path / "empty")


# --- rank variables and what launchers report ----------------------------------------------------


def test_rank_variables_of_each_launcher():
    mpi = {
        "OMPI_COMM_WORLD_RANK": "3",
        "OMPI_COMM_WORLD_SIZE": "8",
        "OMPI_COMM_WORLD_LOCAL_RANK": "1",
        "OMPI_COMM_WORLD_LOCAL_SIZE": "2",
    }
    assert (ranks.rank(mpi), ranks.size(mpi), ranks.local_rank(mpi), ranks.local_size(mpi)) == (
        3,
        8,
        1,
        2,
    )
    gloo = {"HOROVOD_RANK": "1", "HOROVOD_SIZE": "2", "HOROVOD_LOCAL_SIZE": "2"}
    assert ranks.under_launcher(gloo) and ranks.rank(gloo) == 1 and ranks.local_size(gloo) == 2
    step = {
        "SLURM_PROCID": "5",
        "SLURM_STEP_ID": "0",
        "SLURM_NTASKS": "16",
        "SLURM_LOCALID": "1",
        "SLURM_STEP_TASKS_PER_NODE": "8(x2)",
    }
    assert ranks.under_launcher(step) and ranks.rank(step) == 5 and ranks.local_size(step) == 8
    # A batch script has SLURM_PROCID=0 but is not a rank: nvlm launches from it.
    batch = {"SLURM_PROCID": "0", "SLURM_JOB_ID": "42", "SLURM_NTASKS": "16"}
    assert not ranks.under_launcher(batch) and ranks.size(batch) is None
    assert not ranks.under_launcher({**batch, "SLURM_STEP_ID": "4294967294"})
    assert ranks.is_child({"NVLM_CHILD": "1"}) and not ranks.is_child({})


def test_launchers_name_the_failed_rank():
    mpirun = (
        "Primary job  terminated normally, but 1 process returned\n...\n"
        "  Process name: [[7318,1],1]\n  Exit code:    1\n"
    )
    assert _launcher_rank(mpirun) == 1
    signaled = "mpirun noticed that process rank 3 with PID 0 on node vm exited on signal 9"
    assert _launcher_rank(signaled) == 3
    horovodrun = (
        "Process 1 exit with status code 3.\nThe first process to do so was:\nProcess name: 1"
    )
    assert _launcher_rank(horovodrun) == 1
    assert _launcher_rank("srun: error: gpu02: task 9: Exited with exit code 1") == 9
    assert _launcher_rank("all good") is None


# --- through the CLI ------------------------------------------------------------------------


@pytest.fixture
def bin_dir(tmp_path, monkeypatch) -> Path:
    """A PATH with stand-ins for mpirun and srun (never run: --dry-run only)."""
    path = tmp_path / "bin"
    path.mkdir()
    for name in ("mpirun", "srun"):
        (path / name).write_text("#!/bin/sh\nexit 99\n")
        (path / name).chmod(stat.S_IRWXU)
    monkeypatch.setenv("PATH", f"{path}{os.pathsep}{os.environ['PATH']}")
    for var in ("SLURM_JOB_ID", "OMPI_COMM_WORLD_RANK", "HOROVOD_RANK", "PMI_RANK", "NVLM_CHILD"):
        monkeypatch.delenv(var, raising=False)
    return path


def dry_run(shards: Path, out: Path, *extra: str):
    return invoke("pretrain", "--model", "bert", "--preset", "cpu-fp32", "--data", shards,
                  "--out", out, "--set", "model.size=tiny", "--dry-run", *extra)  # fmt: skip


def command_of(result) -> list[str]:
    assert result.exit_code == 0, result.output
    lines = [ln for ln in result.stdout.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stdout
    words = shlex.split(lines[0])
    while "=" in words[0]:  # NVLM_CHILD=1 horovodrun ...
        words.pop(0)
    return words


def test_dry_run_mpirun_prints_the_command_and_writes_nothing(rank_shards, tmp_path, bin_dir):
    out = tmp_path / "run"
    argv = command_of(dry_run(rank_shards, out, "--gpus", "2", "--launcher", "mpirun"))
    assert argv[0] == str(bin_dir / "mpirun") and argv[1:5] == ["-np", "2", "-H", "localhost:2"]
    child = argv[argv.index("-m") - 1 :]
    assert child[1:4] == ["-m", "nvlm", "pretrain"]
    assert child[child.index("--config") + 1] == str((out / "config.yaml").absolute())
    assert child[child.index("--data") + 1] == str(rank_shards.absolute())
    assert not out.exists()


def test_dry_run_picks_srun_in_a_slurm_allocation(rank_shards, tmp_path, bin_dir, monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "1234")
    argv = command_of(dry_run(rank_shards, tmp_path / "run", "--gpus", "4"))
    assert argv[0] == str(bin_dir / "srun")
    assert argv[1:4] == ["--mpi=pmi2", "--ntasks", "4"] and "--kill-on-bad-exit=1" in argv


def test_dry_run_multi_node_from_hosts_and_hostfile(rank_shards, tmp_path, bin_dir):
    argv = command_of(
        dry_run(rank_shards, tmp_path / "a", "--hosts", "node1:2,node2:2", "--launcher", "mpirun")
    )
    assert argv[argv.index("-np") + 1] == "4" and argv[argv.index("-H") + 1] == "node1:2,node2:2"
    hostfile = tmp_path / "hosts"
    hostfile.write_text("node1 slots=3\nnode2 slots=3\n")
    argv = command_of(
        dry_run(
            rank_shards,
            tmp_path / "b",
            "--hostfile",
            str(hostfile),
            "--gpus",
            "4",
            "--launcher",
            "horovodrun",
            "--controller",
            "mpi",
        )
    )
    assert argv[argv.index("-np") + 1] == "4" and argv[argv.index("-H") + 1] == "node1:3,node2:1"
    assert "--mpi" in argv


def test_dry_run_of_one_process_launches_nothing(rank_shards, tmp_path, bin_dir):
    result = dry_run(rank_shards, tmp_path / "run")
    assert result.exit_code == 0 and result.stdout == ""
    assert "trains in this process" in result.stderr


def test_dry_run_json(rank_shards, tmp_path, bin_dir):
    import json

    result = dry_run(rank_shards, tmp_path / "run", "--gpus", "2", "--launcher", "mpirun", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert (
        out["launcher"] == "mpirun" and out["processes"] == 2 and out["argv"][1:3] == ["-np", "2"]
    )


@pytest.mark.parametrize(("extra", "message"), [
    (("--gpus", "0"), "--gpus 0: give at least 1 process"),
    (("--gpus", "2", "--launcher", "pdsh"), "unknown launcher 'pdsh'"),
    (("--hosts", "node1,node2"), "is not host:slots"),
    (("--hostfile", "/nonexistent/hosts"), "hostfile /nonexistent/hosts not found"),
    (("--gpus", "2", "--launcher", "none"), "--launcher none trains in this process"),
    (("--gpus", "8", "--hosts", "a:2,b:2"), "needs more slots"),
])  # fmt: skip
def test_launcher_user_errors_are_one_line(rank_shards, tmp_path, bin_dir, extra, message):
    result = dry_run(rank_shards, tmp_path / "run", *extra)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("nvlm: error: ") and message in lines[-1], result.stderr
    assert "Traceback" not in result.stderr


def test_a_launcher_that_is_not_installed(rank_shards, tmp_path, monkeypatch):
    # Without --dry-run (a dry run prints it with a warning: test_dry_run_without_launcher.py).
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing there
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    result = invoke("pretrain", "--model", "bert", "--preset", "cpu-fp32", "--data", rank_shards,
                    "--out", tmp_path / "run", "--set", "model.size=tiny", "--gpus", "2",
                    "--launcher", "srun")  # fmt: skip
    assert result.exit_code == 2
    assert "launcher srun is not installed" in result.stderr.strip().splitlines()[-1]


# --- the parent's watch (a fake launcher: no TensorFlow, no Horovod) --------------------------

FAKE_RANK = """
import sys, time
from pathlib import Path
from nvlm.launch.rank_log import RankLog
rank, run, fate = int(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
log = RankLog(run, rank)
log.redirect()
log.started()
print(f"hello from rank {rank}", flush=True)
if fate == "fail":
    log.finished(1, "RuntimeError: boom")
    sys.exit(1)
if fate == "hang":  # like a rank waiting forever in an allreduce for a dead peer
    time.sleep(600)
log.finished(0)
"""


def fake_job(tmp_path: Path, fates: tuple[str, ...], grace_s: float = 1.0):
    import io
    import sys

    from nvlm.launch.command import LaunchCommand
    from nvlm.launch.job import Job

    script = tmp_path / "rank.py"
    script.write_text(FAKE_RANK)
    run = tmp_path / "run"
    ranks_ = " & ".join(
        f"{shlex.quote(sys.executable)} {script} {r} {run} {fate}" for r, fate in enumerate(fates)
    )
    # A launcher that waits for every rank whatever happens (what a launcher must NOT do).
    command = LaunchCommand(["bash", "-c", f"{ranks_} & wait"], {})
    stream, said = io.BytesIO(), []
    job = Job(command, run=run, processes=len(fates), env=dict(os.environ), grace_s=grace_s,
              stream=stream, say=said.append, poll_s=0.05)  # fmt: skip
    return job.run_to_end(), stream.getvalue().decode(), said, run


def test_the_parent_streams_rank_0_and_succeeds(tmp_path):
    result, streamed, _, run = fake_job(tmp_path, ("ok", "ok"))
    assert result.exit_code == 0 and result.message is None
    assert streamed == "hello from rank 0\n"
    assert (run / "logs" / "rank-1.log").read_text() == "hello from rank 1\n"


def test_the_parent_ends_a_job_its_launcher_leaves_hanging(tmp_path):
    import time

    t0 = time.monotonic()
    result, _, said, run = fake_job(tmp_path, ("hang", "fail"))
    assert time.monotonic() - t0 < 20
    assert result.exit_code == 1 and result.failed.rank == 1
    assert result.message.startswith("rank 1 failed (exit status 1: RuntimeError: boom); its log: ")
    assert str(run / "logs" / "rank-1.log") in result.message
    assert said == ["rank 1 failed (exit status 1: RuntimeError: boom); ending the job"]


def test_a_previous_attempts_logs_are_kept_once(tmp_path):
    fake_job(tmp_path, ("ok", "ok"))
    fake_job(tmp_path, ("ok", "ok"))
    logs = tmp_path / "run" / "logs"
    assert (logs / "rank-1.log.1").read_text() == "hello from rank 1\n"
    assert (logs / "rank-1.log").read_text() == "hello from rank 1\n"
