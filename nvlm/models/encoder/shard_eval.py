"""One pass over every example of HDF5 shard parts, summing what a step returns."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import tensorflow as tf


def sum_over_parts(
    step: Callable[[dict], dict],
    parts,
    batch_size: int,
    total: int,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[dict[str, float], float]:
    """(sums of `step`'s outputs over all batches, seconds taken).

    `step` maps a batch (int32 tensors) to scalar sums, one of them `sequences`. Sums are
    divided by the caller at the end, so the figures are exact over the whole set, not means
    of batch means. `progress(sequences_done, total)` is called after each batch.
    """
    totals: dict[str, float] = {}
    t0 = time.perf_counter()
    for part in parts:
        for start in range(0, len(part), batch_size):
            batch = {
                k: tf.constant(v.astype(np.int32))
                for k, v in part.read(start, min(start + batch_size, len(part))).items()
            }
            for k, v in step(batch).items():
                totals[k] = totals.get(k, 0.0) + float(v)
            if progress:
                progress(int(totals["sequences"]), total)
    return totals, time.perf_counter() - t0
