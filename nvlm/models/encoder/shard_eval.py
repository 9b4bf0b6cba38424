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
    *,
    world=None,
    keys: tuple[str, ...] = (),
) -> tuple[dict[str, float], float]:
    """(sums of `step`'s outputs over all batches, seconds taken).

    `step` maps a batch (int32 tensors) to scalar sums, one of them `sequences`. Sums are
    divided by the caller at the end, so the figures are exact over the whole set, not means
    of batch means. `progress(sequences_done, total)` is called after each batch.

    With a `world` of several ranks the batches are dealt out (batch i to rank i mod size) and
    the sums of `keys` (every key `step` returns) are added over the ranks in one allreduce:
    every rank gets the figures of the whole set, in about 1/size of the time.
    """
    totals: dict[str, float] = {}
    shared = world is not None and world.size > 1
    t0 = time.perf_counter()
    index = -1
    for part in parts:
        for start in range(0, len(part), batch_size):
            index += 1
            if shared and index % world.size != world.rank:
                continue
            batch = {
                k: tf.constant(v.astype(np.int32))
                for k, v in part.read(start, min(start + batch_size, len(part))).items()
            }
            for k, v in step(batch).items():
                totals[k] = totals.get(k, 0.0) + float(v)
            if progress:
                progress(int(totals["sequences"]), total)
    if shared:
        summed = world.allreduce_sum(
            tf.constant([totals.get(k, 0.0) for k in keys], tf.float64), name="nvlm_eval_sums"
        )
        totals = dict(zip(keys, (float(v) for v in np.asarray(summed)), strict=True))
    return totals, time.perf_counter() - t0
