"""LAMB (You et al., 2019, "Large Batch Optimization for Deep Learning"): Adam direction with
decoupled weight decay, rescaled per layer by the trust ratio ||w|| / ||update||."""

from __future__ import annotations

import tensorflow as tf

from nvlm.train.optimizer import Optimizer


class Lamb(Optimizer):
    """LAMB with bias correction; LayerNorm and biases skip decay and the trust ratio.

    Example:
        opt = Lamb(model.trainable_variables, beta1=0.878, beta2=0.974, weight_decay=0.01)
        opt.apply(grads, lr=6e-3)
    """

    def _step_size(self, w, update, lr, decay):
        if not decay:
            return lr * update
        w_norm = tf.norm(w)
        u_norm = tf.norm(update)
        # Trust ratio 1 when either norm is 0 (fresh zero-initialised weights, zero update).
        ratio = tf.where((w_norm > 0.0) & (u_norm > 0.0), w_norm / u_norm, 1.0)
        return lr * ratio * update
