"""Optimizer base: slots as plain tf.Variables so that the training state is explicit,
checkpointable and broadcastable (Keras 3 variables are not tf.Variables; see
shared notes on Horovod), and weight-decay / layer-adaptation exclusions by variable path.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import tensorflow as tf

# LayerNorm scale/offset and every bias are excluded from weight decay and from LAMB's trust
# ratio, as in the BERT and LAMB papers' reference recipes.
DEFAULT_EXCLUDE = r"(layer_?norm|layernorm|/bias$|_bias$|/beta$|/gamma$)"


class Optimizer:
    """Adam-family optimizer over a fixed list of Keras variables."""

    def __init__(
        self,
        variables: Sequence,
        *,
        beta1: float = 0.9,
        beta2: float = 0.999,
        epsilon: float = 1e-6,
        weight_decay: float = 0.01,
        exclude: str = DEFAULT_EXCLUDE,
        lr_multipliers: Sequence[float] | None = None,
    ) -> None:
        self.variables = list(variables)
        self.beta1, self.beta2, self.epsilon = beta1, beta2, epsilon
        self.weight_decay = weight_decay
        pattern = re.compile(exclude, re.IGNORECASE)
        self.decay_mask = [not pattern.search(_path(v)) for v in self.variables]
        self.lr_multipliers = (
            list(lr_multipliers) if lr_multipliers else [1.0] * len(self.variables)
        )
        self.iterations = tf.Variable(0, dtype=tf.int64, trainable=False, name="iterations")
        self.m = [self._slot(v, "m") for v in self.variables]
        self.v = [self._slot(v, "v") for v in self.variables]

    @staticmethod
    def _slot(var, kind: str) -> tf.Variable:
        return tf.Variable(
            tf.zeros(var.shape, tf.float32), trainable=False, name=f"{kind}/{_path(var)}"
        )

    def slot_variables(self) -> list[tf.Variable]:
        return [self.iterations, *self.m, *self.v]

    def apply(self, grads: Sequence[tf.Tensor], lr) -> None:
        """One update of every variable (call inside a tf.function)."""
        self.iterations.assign_add(1)
        t = tf.cast(self.iterations, tf.float32)
        c1 = 1.0 - tf.pow(self.beta1, t)
        c2 = 1.0 - tf.pow(self.beta2, t)
        for i, (var, g) in enumerate(zip(self.variables, grads, strict=True)):
            g = tf.cast(g, tf.float32)
            m = self.m[i].assign(self.beta1 * self.m[i] + (1.0 - self.beta1) * g)
            v = self.v[i].assign(self.beta2 * self.v[i] + (1.0 - self.beta2) * tf.square(g))
            update = (m / c1) / (tf.sqrt(v / c2) + self.epsilon)
            w = var.value if hasattr(var, "value") else var
            if self.decay_mask[i] and self.weight_decay > 0:
                update = update + self.weight_decay * w
            step = self._step_size(i, w, update, lr * self.lr_multipliers[i])
            var.assign_sub(step)

    def _step_size(self, i: int, w, update, lr):
        raise NotImplementedError


def _path(var) -> str:
    return getattr(var, "path", None) or var.name
