"""Training segments of a token stream for a recurrent-memory LM (Transformer-XL).

The training split (one stream of N tokens) is cut into B = global batch contiguous streams of
N // B tokens (the tail is dropped), as the reference's `batchify` does: row j of every global
batch continues stream j, so a row's memory always holds the text just before it. Segment k of
an epoch is columns [k * tgt_len, (k + 1) * tgt_len) of every stream (targets one further); an
epoch has (N // B - 1) // tgt_len full segments, and training position p (counted in segments
across epochs) is segment p mod that of epoch p // that. Rows are global: rank r of W, micro-
batch c of A (accumulation), takes rows [(r * A + c) * b, (r * A + c + 1) * b) with b the
micro-batch, i.e. rank r owns rows [r * B / W, (r + 1) * B / W). The order is a pure function
of the position, so a resumed run (with any --gpus) reads exactly what it would have read.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from nvlm.errors import UserError


class LMStreams:
    """Segments of `global_batch` parallel streams cut from `ids`.

    Example:
    >>> s = LMStreams(np.arange(21), global_batch=2, tgt_len=3)
    >>> s.segments_per_epoch
    3
    >>> x, y = s.segment(1, np.array([0, 1]))
    >>> x.tolist(), y.tolist()
    ([[3, 4, 5], [13, 14, 15]], [[4, 5, 6], [14, 15, 16]])
    """

    def __init__(self, ids: np.ndarray, *, global_batch: int, tgt_len: int) -> None:
        self.ids = np.asarray(ids, dtype=np.int32)
        self.global_batch = global_batch
        self.tgt_len = tgt_len
        self.stream_len = len(self.ids) // global_batch
        self.segments_per_epoch = (self.stream_len - 1) // tgt_len
        if self.segments_per_epoch < 1:
            raise UserError(
                f"the training split has {len(self.ids):,} tokens: too few for {global_batch} "
                f"streams of at least data.seq_len + 1 = {tgt_len + 1} tokens (use more text, a "
                "smaller global batch or a shorter data.seq_len)"
            )

    def segment(self, k: int, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(inputs, targets), each `[len(rows), tgt_len]`, of segment k (within the epoch)."""
        starts = rows.astype(np.int64) * self.stream_len + k * self.tgt_len
        index = starts[:, None] + np.arange(self.tgt_len + 1)[None, :]
        window = self.ids[index]
        return window[:, :-1], window[:, 1:]

    def micro_batches(
        self, start_segment: int, micro_batch: int, accumulation: int, *, rank: int, world: int
    ) -> Iterator[dict[str, np.ndarray]]:
        """Endless micro-batches of this rank from global segment `start_segment`: each has
        `tokens`, `targets`, `rows` (global row ids, for the memory) and `segment` (within the
        epoch; 0 means the memory must be ignored)."""
        if micro_batch * accumulation * world != self.global_batch:
            raise ValueError("micro_batch x accumulation x world must be the global batch")
        position = start_segment
        while True:
            k = position % self.segments_per_epoch
            for c in range(accumulation):
                first = (rank * accumulation + c) * micro_batch
                rows = np.arange(first, first + micro_batch, dtype=np.int32)
                tokens, targets = self.segment(k, rows)
                yield {"tokens": tokens, "targets": targets, "rows": rows,
                       "segment": np.int32(k)}  # fmt: skip
            position += 1
