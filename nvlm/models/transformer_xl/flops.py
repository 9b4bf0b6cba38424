"""FLOPs per target token of Transformer-XL, for model FLOPs utilisation (MFU)."""

from __future__ import annotations

from collections.abc import Sequence

from nvlm.layers.adaptive_embedding import cluster_bounds
from nvlm.models.transformer_xl.config import TransformerXLConfig


def flops_per_token(
    cfg: TransformerXLConfig,
    tgt_len: int,
    mem_len: int,
    *,
    tail_fractions: Sequence[float] | None = None,
    training: bool = True,
) -> float:
    """Matmul FLOPs per target token (multiply-add = 2 FLOPs; training = 3 x forward).

    Per layer and token, with D = d_model, A = n_head * d_head, F = d_inner and K = mem_len +
    tgt_len keys: queries D A, keys and values 2 D A K / tgt_len (they are computed for the
    memory positions too), output A D, feed-forward 2 D F, and the three attention products
    (content scores, positional scores, context) 3 K A. The position projection is done once
    per segment for the whole batch and is left out (under 1%).

    Softmax: the head (first cluster + one entry per tail) for every token, and tail i for the
    share `tail_fractions[i]` of target tokens that fall in it (measured on the training data
    by the plugin; without it the tails are not counted, which understates the work), each
    with its projection. The adaptive input projections run for every cluster and token.
    """
    d, a, f = cfg.d_model, cfg.n_head * cfg.d_head, cfg.d_inner
    k = mem_len + tgt_len
    per_layer = d * a + 2 * d * a * k / tgt_len + a * d + 2 * d * f + 3 * k * a
    macs = cfg.n_layer * per_layer
    bounds = cluster_bounds(cfg.vocab_size, cfg.cutoffs)
    embed = cfg.embed_dim
    for i, (start, end) in enumerate(bounds):
        width = embed // cfg.div_val**i if cfg.div_val > 1 else embed
        projected = cfg.div_val > 1 or width != d
        share = 1.0 if i == 0 else (tail_fractions[i - 1] if tail_fractions else 0.0)
        words = end - start + (len(bounds) - 1 if i == 0 else 0)
        macs += share * (width * words + (d * width if projected else 0))
        if projected:
            macs += d * width  # the input projection (every cluster, every token)
    forward = 2.0 * macs
    return float(3 * forward if training else forward)
