"""Reading a `[batch, seq, width]` tensor at given positions per sequence."""

from __future__ import annotations

from keras import ops


def gather_rows(x, positions):
    """`x[b, positions[b, i]]` for every b, i: `[batch, P, width]` from `[batch, seq, width]`.

    Flattened to `[batch * seq, width]` and read at rows `b * seq + position` with ONE gather
    of whole rows (`take_along_axis` would build a `[batch, P, width]` index tensor).
    """
    shape = ops.shape(x)
    batch, seq_len, width = shape[0], shape[1], x.shape[-1]
    positions = ops.cast(positions, "int32")
    offsets = ops.arange(batch, dtype="int32")[:, None] * seq_len
    flat = ops.take(ops.reshape(x, (-1, width)), ops.reshape(positions + offsets, (-1,)), axis=0)
    return ops.reshape(flat, (batch, -1, width))
