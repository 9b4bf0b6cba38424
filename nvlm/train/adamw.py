"""AdamW (Loshchilov & Hutter, 2019): Adam with decoupled weight decay."""

from __future__ import annotations

from nvlm.train.optimizer import Optimizer


class AdamW(Optimizer):
    """Adam with bias correction and decoupled weight decay (LayerNorm and biases excluded).

    Example:
        opt = AdamW(model.trainable_variables, weight_decay=0.01, lr_multipliers=layer_decay)
        opt.apply(grads, lr=1e-4)
    """

    def _step_size(self, w, update, lr, decay):
        return lr * update
