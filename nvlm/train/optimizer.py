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

    def apply(self, grads: Sequence[tf.Tensor], lr, grad_scale=None) -> None:
        """One update of every variable (call inside a tf.function, or eagerly).

        `grad_scale`: an optional scalar every gradient is multiplied by first (global-norm
        clipping), applied inside each variable's fused update instead of as a separate pass
        over all gradients (130 ms of a BERT-base step on 2 CPU cores).
        """
        self.iterations.assign_add(1)
        scale = tf.constant(1.0) if grad_scale is None else tf.cast(grad_scale, tf.float32)
        t = tf.cast(self.iterations, tf.float32)
        c1 = 1.0 - tf.pow(self.beta1, t)
        c2 = 1.0 - tf.pow(self.beta2, t)
        lr = tf.cast(lr, tf.float32)
        for i, (var, g) in enumerate(zip(self.variables, grads, strict=True)):
            self._update(
                _backing(var),
                self.m[i],
                self.v[i],
                tf.cast(g, tf.float32),
                lr * self.lr_multipliers[i],
                c1,
                c2,
                scale,
                self.decay_mask[i],
            )

    @tf.function(jit_compile=True)
    def _update(self, var, m, v, g, lr, c1, c2, scale, decay: bool):
        # One XLA cluster per variable: the ~20 element-wise passes of an Adam-family update
        # over the variable (moments, bias correction, decay, trust-ratio norms, step), each a
        # trip through memory as separate TF ops, become a few fused loops; each variable stays
        # a separate op, which the executor runs in parallel with the others. BERT-base LAMB
        # step with clipping (110 M parameters, 2 shared Xeon cores, TF 2.21): 1.52 -> 0.97 CPU
        # seconds, 3.1 -> 1.8 s wall; weights equal to 1.2e-7 after 9 steps. Traced and
        # compiled once per (shape, decay): about a dozen small programs for BERT.
        g = g * scale
        m_new = self.beta1 * m + (1.0 - self.beta1) * g
        v_new = self.beta2 * v + (1.0 - self.beta2) * tf.square(g)
        m.assign(m_new)
        v.assign(v_new)
        update = (m_new / c1) / (tf.sqrt(v_new / c2) + self.epsilon)
        w = var.read_value()
        if decay and self.weight_decay > 0:
            update = update + self.weight_decay * w
        var.assign_sub(self._step_size(w, update, lr, decay))

    def _step_size(self, w, update, lr, decay: bool):
        """The step subtracted from `w`; `decay` is False for LayerNorm and bias variables."""
        raise NotImplementedError


def _backing(var) -> tf.Variable:
    """The tf.Variable behind a Keras variable (XLA updates it in place)."""
    return var if isinstance(var, tf.Variable) else var.value


def _path(var) -> str:
    return getattr(var, "path", None) or var.name
