"""Learning-rate schedules as pure functions of the optimizer step (graph-friendly).

- poly: linear warmup, then (1 - progress) ** power decay to `min_lr_ratio * lr` — BERT and
  ELECTRA (ELECTRA uses power 0.5, NVIDIA's pretrain_config.sh).
- cosine: linear warmup, then half a cosine from lr to `min_lr_ratio * lr` — Transformer-XL
  (min_lr_ratio 0.1 in NVIDIA's recipe).
- constant: linear warmup, then flat.

Warmup uses (step + 1) / warmup so that the very first update already moves the weights (with
step / warmup the first step would be spent at lr 0).
"""

from __future__ import annotations

import math

import tensorflow as tf


def warmup_steps_for(total_steps: int, warmup_steps: int, warmup_proportion: float | None) -> int:
    if warmup_proportion is not None:
        return int(round(warmup_proportion * total_steps))
    return int(warmup_steps)


def learning_rate(
    step,
    *,
    base_lr: float,
    total_steps: int,
    warmup_steps: int,
    schedule: str = "poly",
    decay_power: float = 1.0,
    min_lr_ratio: float = 0.0,
):
    """Learning rate at 0-based optimizer `step` (a tensor or a Python number)."""
    step = tf.cast(step, tf.float32)
    total = float(max(total_steps, 1))
    warmup = float(warmup_steps)
    floor = base_lr * min_lr_ratio
    warm = base_lr * (step + 1.0) / max(warmup, 1.0)
    if schedule == "constant":
        after = tf.constant(base_lr, tf.float32)
    elif schedule == "poly":
        progress = tf.clip_by_value(step / total, 0.0, 1.0)
        after = (base_lr - floor) * tf.pow(1.0 - progress, decay_power) + floor
    elif schedule == "cosine":
        span = max(total - warmup, 1.0)
        progress = tf.clip_by_value((step - warmup) / span, 0.0, 1.0)
        after = floor + (base_lr - floor) * 0.5 * (1.0 + tf.cos(math.pi * progress))
    else:
        raise ValueError(f"unknown schedule {schedule!r}")
    return tf.where(step < warmup, warm, after)
