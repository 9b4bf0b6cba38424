"""The only module that imports Horovod. `world()` returns one object with the same API for a
single process and for a Horovod job, so the training loop has no `if distributed` branches.

Facts this relies on (shared notes, TF 2.21 / Keras 3 / Horovod 0.28.1):
- Keras 3 variables are not tf.Variables: broadcast their backing `.value` ResourceVariables.
- `hvd.DistributedGradientTape` fails with Keras 3 variables: use a plain tape and one
  `grouped_allreduce` per optimizer step (also what accumulation needs).
- Horovod ops cannot run under XLA: keep allreduce outside `jit_compile` functions.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

RANK_VARIABLES = ("OMPI_COMM_WORLD_RANK", "HOROVOD_RANK", "PMI_RANK")


def under_launcher() -> bool:
    """True when this process was started by horovodrun / mpirun / srun as one rank of a job."""
    if any(v in os.environ for v in RANK_VARIABLES):
        return True
    return "SLURM_PROCID" in os.environ and "SLURM_STEP_ID" in os.environ


class SingleProcess:
    """One process: reduce and broadcast are identities."""

    rank = 0
    local_rank = 0
    size = 1
    is_root = True

    def allreduce_grads(self, grads: Sequence, compress_fp16: bool = False) -> list:
        return list(grads)

    def allreduce_scalar(self, value):
        return value

    def broadcast(self, variables: Sequence) -> None:
        return None

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
        self.is_root = self.rank == 0

    def allreduce_grads(self, grads: Sequence, compress_fp16: bool = False) -> list:
        hvd = self._hvd
        compression = hvd.Compression.fp16 if compress_fp16 else hvd.Compression.none
        return list(hvd.grouped_allreduce(list(grads), op=hvd.Average, compression=compression))

    def allreduce_scalar(self, value):
        return self._hvd.allreduce(value, op=self._hvd.Average)

    def broadcast(self, variables: Sequence) -> None:
        values = [getattr(v, "value", v) for v in variables]
        self._hvd.broadcast_variables(values, root_rank=0)

    def barrier(self) -> None:
        self._hvd.join()


_WORLD: SingleProcess | HorovodWorld | None = None


def world() -> SingleProcess | HorovodWorld:
    """The process group of this run (created once)."""
    global _WORLD
    if _WORLD is None:
        _WORLD = HorovodWorld() if under_launcher() else SingleProcess()
    return _WORLD
