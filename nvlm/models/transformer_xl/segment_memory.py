"""Training memories of Transformer-XL as checkpointed state.

One tf.Variable `[global_batch, n_layer, mem_len, d_model]` (compute dtype) indexed by GLOBAL
row (the stream a row continues, nvlm.data.lm.stream): a micro-batch gathers its rows before
the forward pass and scatters the next memory back after it, inside the training step (XLA has
kernels for both). Because the variable is part of `TrainSpec.extra_state`, a checkpoint holds
the memories and a resumed run continues every stream with the exact hidden states it had.

Under Horovod each rank updates only its own rows (rank r owns [r B/W, (r+1) B/W)); before a
checkpoint every rank's rows are gathered (`sync`, a collective on every rank) so rank 0 saves
all of them; after a restore the broadcast hands every rank the full variable and each reads
its rows. Rows being global, a run resumed with another --gpus reads the same memories.
Cost: every rank holds B rows (base at B = 256, mem_len 192: 16 x 256 x 192 x 512 values,
0.8 GB in fp16), the price of an exact resume at any world size.
"""

from __future__ import annotations

import tensorflow as tf


class SegmentMemory:
    def __init__(self, rows: int, n_layer: int, mem_len: int, d_model: int, dtype) -> None:
        self.rows = rows
        self.states = tf.Variable(
            tf.zeros([rows, n_layer, mem_len, d_model], dtype),
            trainable=False,
            name="txl_memory",
        )

    def read(self, rows):
        return tf.gather(self.states, rows)

    def write(self, rows, values) -> None:
        self.states.scatter_update(tf.IndexedSlices(tf.cast(values, self.states.dtype), rows))

    def sync(self, world) -> None:
        """Gather every rank's rows into every rank's copy (call on all ranks, same time)."""
        if world.size == 1:
            return
        per_rank = self.rows // world.size
        mine = self.states[world.rank * per_rank : (world.rank + 1) * per_rank]
        self.states.assign(world.allgather(mine))
