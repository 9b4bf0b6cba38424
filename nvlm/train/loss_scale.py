"""Dynamic loss scaling for fp16 ("amp"): start high, halve on a non-finite gradient (and skip
that step), double after `growth_interval` finite steps. Values follow the common recipe
(initial 2**15, factor 2, interval 2000) used by NVIDIA's TF2 examples and Keras."""

from __future__ import annotations

import tensorflow as tf


class LossScale:
    """Holds the scale as a tf.Variable so it is checkpointed and restored exactly."""

    def __init__(self, enabled: bool, initial: float = 2.0**15, growth_interval: int = 2000):
        self.enabled = enabled
        self.growth_interval = growth_interval
        self.scale = tf.Variable(
            initial if enabled else 1.0, dtype=tf.float32, trainable=False, name="loss_scale"
        )
        self.good_steps = tf.Variable(0, dtype=tf.int64, trainable=False, name="good_steps")

    def variables(self) -> list[tf.Variable]:
        return [self.scale, self.good_steps]

    def update(self, finite) -> None:
        """Call once per optimizer step with the (all-rank) finiteness decision."""
        if not self.enabled:
            return
        grow = finite & (self.good_steps + 1 >= self.growth_interval)
        new_scale = tf.where(
            finite, tf.where(grow, self.scale * 2.0, self.scale), tf.maximum(self.scale / 2.0, 1.0)
        )
        self.scale.assign(new_scale)
        self.good_steps.assign(
            tf.where(finite & ~grow, self.good_steps + 1, tf.zeros_like(self.good_steps))
        )
