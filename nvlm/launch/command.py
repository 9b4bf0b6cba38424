"""The launcher command line: a pure function of a `LaunchPlan`, tested without launching.

What each form carries, and why:
- mpirun: `-np N -H host:slots,...`, `--bind-to none --map-by slot` (ranks fill a host's slots
  in order and are not pinned to one core: each TensorFlow process runs its own thread pools),
  `-mca pml ob1 -mca btl ^openib` (TCP/shared memory instead of the verbs transport that hangs on
  machines without InfiniBand drivers; NCCL does the GPU traffic), `-mca mpi_yield_when_idle 1`
  for CPU workers (an idle rank waiting in MPI yields its core instead of spinning on it: with
  as many ranks as cores, spinning made a 2-rank tiny-BERT run 2.5x slower, 52.6 s -> 20.6 s
  measured), `-x NAME` for the variables
  remote ranks need (PATH, LD_LIBRARY_PATH, NCCL_*, HOROVOD_*, NVLM_*), `--allow-run-as-root`
  when root (Open MPI refuses otherwise; containers often run as root). This is the Horovod /
  NVIDIA DeepLearningExamples recipe.
- horovodrun: `-np N -H host:slots,...` and `--gloo` or `--mpi`; it forwards its environment to
  every rank itself (so NVLM_CHILD goes in the environment of horovodrun).
- srun (inside a Slurm allocation): `--mpi=pmi2` (Horovod's MPI controller wires up through
  Slurm's PMI2; override with NVLM_SRUN_MPI=pmix), `--ntasks N`, `--kill-on-bad-exit=1` (one
  failed rank ends the step instead of leaving the others waiting in an allreduce).
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from nvlm.errors import UserError
from nvlm.launch.hosts import Host, fill, hosts_arg
from nvlm.launch.ranks import CHILD_VARIABLE

LAUNCHERS = ("horovodrun", "mpirun", "srun")
CHOICES = ("auto", *LAUNCHERS, "none")
CONTROLLERS = ("gloo", "mpi")

# Exported to remote ranks by mpirun -x (when set here): the Horovod/NVIDIA recipe's list plus
# what a virtualenv needs, and every variable of these families.
EXPORT_NAMES = ("PATH", "LD_LIBRARY_PATH", "PYTHONPATH", "VIRTUAL_ENV", "TF_CPP_MIN_LOG_LEVEL")
EXPORT_PREFIXES = ("NVLM_", "NCCL_", "HOROVOD_")
_YIELD = "OMPI_MCA_mpi_yield_when_idle"  # the same setting as -mca mpi_yield_when_idle
NCCL_DEBUG_DEFAULT = "WARN"  # the recipes export NCCL_DEBUG; WARN reports problems, not chatter


@dataclass(frozen=True)
class LaunchPlan:
    """Everything the command depends on (no hidden reads of the environment)."""

    launcher: str  # horovodrun | mpirun | srun
    processes: int
    program: tuple[str, ...]  # what every rank runs: python -m nvlm <command> --config ...
    hosts: tuple[Host, ...] = ()  # () = this machine (mpirun, horovodrun) or the allocation (srun)
    controller: str = "gloo"  # horovodrun only: gloo | mpi
    env: Mapping[str, str] = field(default_factory=dict)  # the environment it will run in
    as_root: bool = False
    executable: str | None = None  # path of the launcher when not simply its name
    cpu_workers: bool = False  # no GPUs: the ranks share the cores (MPI must not spin)


@dataclass(frozen=True)
class LaunchCommand:
    argv: list[str]
    env: dict[str, str]  # to set in the launcher's environment (shown before the command)

    def render(self) -> str:
        prefix = [f"{k}={shlex.quote(v)}" for k, v in self.env.items()]
        return " ".join([*prefix, shlex.join(self.argv)])


def build_command(plan: LaunchPlan) -> LaunchCommand:
    """The argv that starts `plan.processes` ranks of `plan.program` under `plan.launcher`."""
    if plan.processes < 1:
        raise UserError(f"--gpus {plan.processes}: give at least 1 process")
    if plan.hosts and sum(h.slots for h in plan.hosts) < plan.processes:
        raise UserError(
            f"--gpus {plan.processes} needs more slots than the hosts give "
            f"({hosts_arg(plan.hosts)} = {sum(h.slots for h in plan.hosts)})"
        )
    builder = {"mpirun": _mpirun, "horovodrun": _horovodrun, "srun": _srun}.get(plan.launcher)
    if builder is None:
        raise UserError(f"unknown launcher {plan.launcher!r} (choose {', '.join(LAUNCHERS)})")
    return builder(plan)


def _host_list(plan: LaunchPlan) -> str:
    hosts = fill(plan.hosts, plan.processes) if plan.hosts else [Host("localhost", plan.processes)]
    return hosts_arg(hosts)


def exported_names(env: Mapping[str, str]) -> list[str]:
    """The variables mpirun must pass to remote ranks (those set in `env`)."""
    names = {n for n in env if n in EXPORT_NAMES or n.startswith(EXPORT_PREFIXES)}
    names.discard(CHILD_VARIABLE)  # passed with its value
    names.discard("NCCL_DEBUG")  # always passed with a value
    return sorted(names)


def _mpirun(plan: LaunchPlan) -> LaunchCommand:
    argv = [
        plan.executable or "mpirun",
        "-np",
        str(plan.processes),
        "-H",
        _host_list(plan),
        "--bind-to",
        "none",
        "--map-by",
        "slot",
        "-mca",
        "pml",
        "ob1",
        "-mca",
        "btl",
        "^openib",
        "-x",
        f"NCCL_DEBUG={plan.env.get('NCCL_DEBUG', NCCL_DEBUG_DEFAULT)}",
        "-x",
        f"{CHILD_VARIABLE}=1",
    ]
    for name in exported_names(plan.env):
        argv += ["-x", name]
    if plan.cpu_workers:
        argv += ["-mca", "mpi_yield_when_idle", "1"]
    if plan.as_root:
        argv.append("--allow-run-as-root")
    return LaunchCommand([*argv, *plan.program], {})


def _horovodrun(plan: LaunchPlan) -> LaunchCommand:
    if plan.controller not in CONTROLLERS:
        raise UserError(f"unknown controller {plan.controller!r} (choose gloo or mpi)")
    argv = [
        plan.executable or "horovodrun",
        "-np",
        str(plan.processes),
        "-H",
        _host_list(plan),
        f"--{plan.controller}",
    ]
    env = {CHILD_VARIABLE: "1"}
    if plan.cpu_workers and plan.controller == "mpi":
        env[_YIELD] = "1"  # horovodrun --mpi exports its environment to mpirun's ranks
    return LaunchCommand([*argv, *plan.program], env)


def _srun(plan: LaunchPlan) -> LaunchCommand:
    mpi = plan.env.get("NVLM_SRUN_MPI", "pmi2")
    argv = [plan.executable or "srun", f"--mpi={mpi}", "--ntasks", str(plan.processes)]
    if plan.hosts:
        used = fill(plan.hosts, plan.processes)
        per_node = {h.slots for h in used}
        if len(per_node) != 1:
            raise UserError(
                f"srun places the same number of tasks on every node, but the hosts give "
                f"{hosts_arg(used)} for {plan.processes} processes (use equal slots)"
            )
        argv += [
            "--nodes",
            str(len(used)),
            "--ntasks-per-node",
            str(per_node.pop()),
            "--nodelist",
            ",".join(h.name for h in used),
        ]
    exports = f"ALL,{CHILD_VARIABLE}=1" + (f",{_YIELD}=1" if plan.cpu_workers else "")
    argv += ["--kill-on-bad-exit=1", f"--export={exports}"]
    return LaunchCommand([*argv, *plan.program], {})


def find_launcher(name: str, env: Mapping[str, str] | None = None) -> str | None:
    """Path of a launcher: on PATH, or next to this Python (a venv's horovodrun, unactivated)."""
    env = os.environ if env is None else env
    found = shutil.which(name, path=env.get("PATH"))
    if found:
        return found
    beside = os.path.join(os.path.dirname(sys.executable), name)
    return beside if os.access(beside, os.X_OK) else None


def choose_launcher(
    requested: str,
    env: Mapping[str, str] | None = None,
    find: Callable[[str], str | None] = find_launcher,
    *,
    installed: bool = True,
) -> str:
    """'auto' -> srun in a Slurm allocation, else horovodrun when installed, else mpirun.

    `installed=False` (--dry-run) accepts a named launcher that is not on this machine: the
    command may be meant for another one (a login node without srun writing a Slurm script)."""
    env = os.environ if env is None else env
    name = requested.strip().lower()
    if name not in CHOICES:
        raise UserError(f"unknown launcher {requested!r} (choose {', '.join(CHOICES)})")
    if name == "none":
        return name
    if name == "auto":
        order = ["srun"] if env.get("SLURM_JOB_ID") else []
        order += ["horovodrun", "mpirun"]
        for candidate in order:
            if find(candidate):
                return candidate
        raise UserError(
            "no launcher found: install Horovod (horovodrun; `make horovod`) or Open MPI "
            "(mpirun), or pass --gpus 1 to train in this process; `nvlm doctor` shows what is there"
        )
    if installed and not find(name):
        raise UserError(
            f"launcher {name} is not installed (not on PATH); `nvlm doctor` lists the launchers "
            "found, or pass --launcher auto"
        )
    return name


def default_controller(requested: str | None, mpi_built: Callable[[], bool]) -> str:
    """horovodrun's controller: as asked, else Gloo (works without an MPI installation)."""
    if requested in (None, "", "auto"):
        return "gloo"
    name = requested.lower()
    if name not in CONTROLLERS:
        raise UserError(f"unknown controller {requested!r} (choose gloo or mpi)")
    if name == "mpi" and not mpi_built():
        raise UserError("--controller mpi: this Horovod was built without MPI (use gloo)")
    return name


def child_program(command: Sequence[str], python: str | None = None) -> tuple[str, ...]:
    """What every rank runs: this Python, `-m nvlm`, the command (with --config RUN/config.yaml)."""
    return (python or sys.executable, "-m", "nvlm", *command)
