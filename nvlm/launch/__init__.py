"""Launching data-parallel runs: horovodrun / mpirun / srun commands, rank helpers, the parent
that watches a job, and the ranks' log and status files.

    plan = LaunchPlan("mpirun", 16, child_program(["pretrain", ...]), hosts=tuple(parse_hosts(
        "node1:8,node2:8")), env=os.environ, as_root=os.geteuid() == 0)
    print(build_command(plan).render())

Nothing here imports TensorFlow or Horovod (nvlm.dist does); the command is a pure function.
"""

from nvlm.launch.command import (
    CHOICES,
    LAUNCHERS,
    LaunchCommand,
    LaunchPlan,
    build_command,
    child_program,
    choose_launcher,
    find_launcher,
)
from nvlm.launch.hosts import Host, parse_hosts, read_hostfile, total_slots
from nvlm.launch.job import Job, JobResult
from nvlm.launch.rank_log import RankLog
from nvlm.launch.ranks import is_child, under_launcher

__all__ = [
    "CHOICES",
    "LAUNCHERS",
    "Host",
    "Job",
    "JobResult",
    "LaunchCommand",
    "LaunchPlan",
    "RankLog",
    "build_command",
    "child_program",
    "choose_launcher",
    "find_launcher",
    "is_child",
    "parse_hosts",
    "read_hostfile",
    "total_slots",
    "under_launcher",
]
