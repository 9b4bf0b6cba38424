"""The only module that imports Horovod. `world()` returns one object with the same API for a
single process and for a Horovod job, so the training loop has no `if distributed` branches.

Facts this relies on (shared notes, TF 2.21 / Keras 3 / Horovod 0.28.1):
- Keras 3 variables are not tf.Variables: broadcast their backing `.value` ResourceVariables.
- `hvd.DistributedGradientTape` fails with Keras 3 variables: use a plain tape and one
  `grouped_allreduce` per optimizer step (also what accumulation needs).
- Horovod ops cannot run under XLA: keep allreduce outside `jit_compile` functions.

A rank is pinned when the world is created, before TensorFlow initializes its runtime: one GPU
per process by local rank, or on CPU workers `cores // local_size` threads per process so that
N processes on one machine do not oversubscribe its cores.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence

from nvlm.launch.ranks import RANK_VARIABLES, under_launcher

__all__ = [
    "RANK_VARIABLES",
    "HorovodWorld",
    "SingleProcess",
    "pin_process",
    "under_launcher",
    "world",
]


class SingleProcess:
    """One process: reduce and broadcast are identities."""

    rank = 0
    local_rank = 0
    size = 1
    local_size = 1
    is_root = True
    controller = "none"
    device = "default"

    def allreduce_grads(
        self, grads: Sequence, compress_fp16: bool = False, average: bool = True
    ) -> list:
        return list(grads)

    def allreduce_mean(self, values, name: str):
        return values

    def allreduce_sum(self, values, name: str):
        return values

    def broadcast(self, variables: Sequence) -> None:
        return None

    def allgather(self, tensor):
        return tensor

    def barrier(self) -> None:
        return None


class HorovodWorld:
    """One rank of a Horovod job (MPI or Gloo controller)."""

    def __init__(self) -> None:
        import horovod.tensorflow as hvd

        hvd.init()
        self._hvd = hvd
        self.rank = hvd.rank()
        self.local_rank = hvd.local_rank()
        self.size = hvd.size()
        self.local_size = hvd.local_size()
        self.is_root = self.rank == 0
        self.controller = "mpi" if hvd.mpi_enabled() else "gloo"
        self.device = pin_process(self.local_rank, self.local_size)

    def allreduce_grads(
        self, grads: Sequence, compress_fp16: bool = False, average: bool = True
    ) -> list:
        """The ranks' gradients summed, or averaged (`average`), in one grouped allreduce."""
        hvd = self._hvd
        compression = hvd.Compression.fp16 if compress_fp16 else hvd.Compression.none
        op = hvd.Average if average else hvd.Sum
        return list(hvd.grouped_allreduce(list(grads), op=op, compression=compression))

    def allreduce_mean(self, values, name: str):
        """The mean over ranks of a float32 vector (eager; every rank calls it with `name`)."""
        return self._hvd.allreduce(values, op=self._hvd.Average, name=name)

    def allreduce_sum(self, values, name: str):
        """The sum over ranks of a vector (eager; every rank calls it with `name`)."""
        return self._hvd.allreduce(values, op=self._hvd.Sum, name=name)

    def broadcast(self, variables: Sequence) -> None:
        import tensorflow as tf

        # tf.Variables as they are; Keras 3 variables through their backing tf.Variable (`.value`
        # is a property there, but a METHOD of tf.Variable: do not unwrap those).
        values = [v if isinstance(v, tf.Variable) else v.value for v in variables]
        self._hvd.broadcast_variables(values, root_rank=0)

    def barrier(self) -> None:
        self._hvd.join()

    def allgather(self, tensor):
        """Every rank's `tensor` concatenated along axis 0, in rank order."""
        return self._hvd.allgather(tensor)


def cpu_cores() -> int:
    """Cores this process may use (its affinity mask: a launcher or cgroup may have cut it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def pin_process(local_rank: int, local_size: int) -> str:
    """One GPU per process by local rank; on CPU, this process's share of the cores.

    Must run before TensorFlow initializes its runtime (the first op); returns what it did.
    """
    import tensorflow as tf

    try:
        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            gpu = gpus[local_rank % len(gpus)]
            tf.config.set_visible_devices(gpu, "GPU")
            tf.config.experimental.set_memory_growth(gpu, True)
            return f"GPU {local_rank % len(gpus)} of {len(gpus)}"
        cores = cpu_cores()
        # Already partitioned by the launcher (srun --cpus-per-task, a binding): use it all.
        share = cores if cores < (os.cpu_count() or cores) else cores // max(1, local_size)
        threads = max(1, share)
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        # With one core, independent ops one after the other. With more, TensorFlow's default
        # (independent ops in parallel, each on the shared intra-op pool): limiting a 2-core
        # process to one op at a time made a BERT-base training step 20% slower (3.48 s
        # against 2.84 s of compute, TF 2.21).
        if threads == 1:
            tf.config.threading.set_inter_op_parallelism_threads(1)
        return f"CPU, {threads} thread(s) of {os.cpu_count()} cores"
    except RuntimeError as exc:  # TensorFlow already initialized: too late to pin
        warnings.warn(f"could not pin rank {local_rank}: {exc}", stacklevel=2)
        return "unpinned"


_WORLD: SingleProcess | HorovodWorld | None = None


def world() -> SingleProcess | HorovodWorld:
    """The process group of this run (created once)."""
    global _WORLD
    if _WORLD is None:
        _WORLD = HorovodWorld() if under_launcher() else SingleProcess()
    return _WORLD
