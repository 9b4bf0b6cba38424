"""When a fine-tuning task evaluates its dev set while it trains (classification, SQuAD)."""

from __future__ import annotations

import math

from nvlm.errors import UserError


def held_out_every(cfg, examples: int, *, refusal: str) -> int | None:
    """Steps between two evaluations of `data.eval_data` while training: `train.eval_every`,
    or one epoch of `examples` with `train.eval_each_epoch`; None when neither is set (the dev
    set is then evaluated after training only). Without a dev set, `UserError(refusal)`."""
    t = cfg.train
    if not (t.eval_every or t.eval_each_epoch):
        return None
    if cfg.data.eval_data is None:
        raise UserError(refusal)
    return math.ceil(examples / cfg.global_batch) if t.eval_each_epoch else t.eval_every
