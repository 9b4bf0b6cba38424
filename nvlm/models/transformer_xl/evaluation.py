"""Language-model evaluation with segment memories: every token scored exactly once.

The N tokens of a split give N - 1 targets (token t predicted from tokens < t). They are cut
into `batch_size` contiguous streams of ceil((N - 1) / batch_size) targets (the last one
padded, with weight 0), read segment by segment (tgt_len columns at a time) with the memory of
the previous segments, as X1's evaluation does. Each stream starts with an empty memory; with
one stream and mem_len >= N the log-likelihoods equal those of one pass over the whole text
(tests/test_txl_model.py checks it to 1e-4).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np
import tensorflow as tf

LN2 = math.log(2.0)


def _step_fn(model, xla: bool):
    def step(tokens, targets, memory, valid):
        hidden, memory = model(tokens, memory, valid=valid, training=False)
        return model.log_prob(hidden, targets), memory

    return tf.function(step, jit_compile=xla, reduce_retracing=True)


def segment_log_probs(
    model,
    inputs: np.ndarray,
    targets: np.ndarray,
    *,
    tgt_len: int,
    mem_len: int,
    xla: bool = False,
    on_segment: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, list[float]]:
    """log p(targets[r, t] | inputs[r, :t+1] and earlier) for `[rows, L]` arrays, reading
    tgt_len columns at a time with memory. Returns float64 `[rows, L]` and the wall time (s)
    of each segment (one batch of `rows` x tgt_len tokens). Columns past the end of a row's
    real text may hold any id: the caller masks them (they only follow real tokens)."""
    rows, length = inputs.shape
    segments = max(1, math.ceil(length / tgt_len))
    pad = segments * tgt_len - length
    inputs = np.pad(inputs.astype(np.int32), ((0, 0), (0, pad)))
    targets = np.pad(targets.astype(np.int32), ((0, 0), (0, pad)))
    step = _step_fn(model, xla)
    memory = model.empty_memory(rows, mem_len)
    out = np.zeros((rows, segments * tgt_len), np.float64)
    latencies = []
    for s in range(segments):
        cols = slice(s * tgt_len, (s + 1) * tgt_len)
        t0 = time.perf_counter()
        logp, memory = step(
            tf.constant(inputs[:, cols]),
            tf.constant(targets[:, cols]),
            memory,
            tf.constant(min(s * tgt_len, mem_len), tf.int32),
        )
        out[:, cols] = logp.numpy()
        latencies.append(time.perf_counter() - t0)
        if on_segment:
            on_segment(s + 1, segments)
    return out[:, :length], latencies


def stream_log_probs(
    model, ids: np.ndarray, *, batch_size: int, tgt_len: int, mem_len: int, xla: bool = False,
    on_segment=None,
) -> tuple[np.ndarray, list[float], int]:  # fmt: skip
    """log p of tokens 1..N-1 of `ids` (float64 `[N - 1]`, text order), the segment latencies
    and the number of streams used."""
    n = len(ids) - 1
    if n < 1:
        raise ValueError("need at least 2 tokens")
    streams = max(1, min(batch_size, n))
    length = math.ceil(n / streams)
    flat_in = np.zeros(streams * length, np.int32)
    flat_tg = np.zeros(streams * length, np.int32)
    flat_in[:n], flat_tg[:n] = ids[:-1], ids[1:]
    logp, latencies = segment_log_probs(
        model, flat_in.reshape(streams, length), flat_tg.reshape(streams, length),
        tgt_len=tgt_len, mem_len=mem_len, xla=xla, on_segment=on_segment,
    )  # fmt: skip
    return logp.reshape(-1)[:n], latencies, streams


def evaluate_stream(
    model,
    ids: np.ndarray,
    *,
    batch_size: int,
    tgt_len: int,
    mem_len: int,
    char_lengths: np.ndarray | None = None,
    xla: bool = False,
    on_segment=None,
) -> dict:
    """Loss (nats), perplexity, bits per token and per character, throughput and latency."""
    t0 = time.perf_counter()
    logp, latencies, streams = stream_log_probs(
        model, ids, batch_size=batch_size, tgt_len=tgt_len, mem_len=mem_len, xla=xla,
        on_segment=on_segment,
    )  # fmt: skip
    total = time.perf_counter() - t0
    n = len(logp)
    nll = -float(logp.sum())
    loss = nll / n
    result = {
        "tokens": n,
        "loss": loss,
        "ppl": math.exp(min(loss, 700.0)),
        "bpt": loss / LN2,
    }
    if char_lengths is not None:
        chars = int(char_lengths[ids[1:]].sum())
        result["characters"] = chars
        result["bpc"] = nll / LN2 / max(chars, 1)
    # The first segment includes tracing and compilation: the start-up, not a batch latency.
    steady = latencies[1:] if len(latencies) > 1 else latencies
    lat_ms = np.array(steady) * 1000.0
    steady_time = float(np.sum(steady))
    tokens_steady = n * len(steady) / len(latencies)
    result.update(
        streams=streams,
        batches=len(latencies),
        total_time_s=round(total, 3),
        time_without_startup_s=round(steady_time, 3),
        tok_per_s=round(tokens_steady / max(steady_time, 1e-9), 1),
        latency_avg_ms=round(float(lat_ms.mean()), 3),
        latency_p50_ms=round(float(np.percentile(lat_ms, 50)), 3),
        latency_p90_ms=round(float(np.percentile(lat_ms, 90)), 3),
        latency_p95_ms=round(float(np.percentile(lat_ms, 95)), 3),
        latency_p99_ms=round(float(np.percentile(lat_ms, 99)), 3),
    )
    return result
