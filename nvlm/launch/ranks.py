"""Which rank is this process? Read from the variables each launcher sets, before Horovod starts.

    mpirun (Open MPI)   OMPI_COMM_WORLD_RANK / _SIZE / _LOCAL_RANK / _LOCAL_SIZE
    horovodrun (Gloo)   HOROVOD_RANK / _SIZE / _LOCAL_RANK / _LOCAL_SIZE
    MPICH, Intel MPI    PMI_RANK / PMI_SIZE, MPI_LOCALRANKID / MPI_LOCALNRANKS
    srun                SLURM_PROCID / SLURM_NTASKS / SLURM_LOCALID (only inside a job step)

These are needed before `hvd.init()`: to name a rank's log file, to keep a child from launching
again, and to default `--gpus` to the size of a job started by someone else's launcher. Once
Horovod runs, `nvlm.dist.world()` is the authority.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

# A process with one of these set is already one rank of a job: it never launches again.
RANK_VARIABLES = ("OMPI_COMM_WORLD_RANK", "HOROVOD_RANK", "PMI_RANK")
CHILD_VARIABLE = "NVLM_CHILD"  # set by nvlm's own launcher in every rank's environment

_RANK = (*RANK_VARIABLES, "SLURM_PROCID")
_SIZE = ("OMPI_COMM_WORLD_SIZE", "HOROVOD_SIZE", "PMI_SIZE", "SLURM_NTASKS")
_LOCAL_RANK = (
    "OMPI_COMM_WORLD_LOCAL_RANK",
    "HOROVOD_LOCAL_RANK",
    "MPI_LOCALRANKID",
    "SLURM_LOCALID",
)
_LOCAL_SIZE = ("OMPI_COMM_WORLD_LOCAL_SIZE", "HOROVOD_LOCAL_SIZE", "MPI_LOCALNRANKS")


def _env(env: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if env is None else env


def in_srun_step(env: Mapping[str, str] | None = None) -> bool:
    """SLURM_PROCID is also set in a batch script (procid 0); only a job step is a rank."""
    e = _env(env)
    step = e.get("SLURM_STEP_ID")
    # 4294967294/5 are Slurm's ids of the batch and extern steps: not started by srun.
    return "SLURM_PROCID" in e and step not in (None, "", "4294967294", "4294967295")


def under_launcher(env: Mapping[str, str] | None = None) -> bool:
    """True when this process was started by horovodrun / mpirun / srun as one rank of a job."""
    e = _env(env)
    return any(v in e for v in RANK_VARIABLES) or in_srun_step(e)


def is_child(env: Mapping[str, str] | None = None) -> bool:
    """True in a rank started by nvlm's own launcher (it reads RUN/config.yaml and nothing else)."""
    return bool(_env(env).get(CHILD_VARIABLE))


def _first_int(names: tuple[str, ...], env: Mapping[str, str]) -> int | None:
    for name in names:
        if name.startswith("SLURM_") and not in_srun_step(env):
            continue
        value = env.get(name, "").strip()
        if value.isdigit():
            return int(value)
    return None


def rank(env: Mapping[str, str] | None = None) -> int:
    """This process's global rank (0 when not under a launcher)."""
    return _first_int(_RANK, _env(env)) or 0


def size(env: Mapping[str, str] | None = None) -> int | None:
    """The number of ranks of the job, when a launcher says so."""
    return _first_int(_SIZE, _env(env))


def local_rank(env: Mapping[str, str] | None = None) -> int:
    return _first_int(_LOCAL_RANK, _env(env)) or 0


def local_size(env: Mapping[str, str] | None = None) -> int | None:
    e = _env(env)
    found = _first_int(_LOCAL_SIZE, e)
    if found is None and in_srun_step(e):
        # "4" or "4(x2)" or "4(x2),3": the first node's count is this node's in the usual case.
        tasks = e.get("SLURM_STEP_TASKS_PER_NODE") or e.get("SLURM_TASKS_PER_NODE") or ""
        head = tasks.split(",")[0].split("(")[0]
        found = int(head) if head.isdigit() else None
    return found
