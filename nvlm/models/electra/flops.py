"""FLOPs per token of ELECTRA, for model FLOPs utilisation (MFU) in run summaries."""

from __future__ import annotations

from nvlm.models.electra.config import ElectraConfig


def _encoder(hidden: int, layers: int, intermediate: int, seq_len: int, embedding: int) -> float:
    """Forward matmul FLOPs per token of one encoder (the accounting of
    `nvlm.models.bert.flops`: weights 2 (4 H^2 + 2 H I) and attention 4 T H per layer), plus
    the embedding projection when the embedding is narrower."""
    flops = layers * (2 * (4 * hidden * hidden + 2 * hidden * intermediate) + 4 * seq_len * hidden)
    return flops + (2 * embedding * hidden if embedding != hidden else 0)


def flops_per_token(
    cfg: ElectraConfig,
    seq_len: int,
    masked_fraction: float = 20 / 128,
    task: str = "pretrain",
    training: bool = True,
) -> float:
    """Matmul FLOPs per input token of one ELECTRA step (x3 for forward + backward).

    pretrain: discriminator encoder + its head (dense H x H and H x 1 on every token) +
    generator encoder + its masked-LM head on `masked_fraction` of the tokens (transform
    H_g x E, tied decoder E x V). The generator's extra cost over a BERT step of the
    discriminator's size is therefore its encoder (about fraction^2 of the discriminator's
    weights at equal depth) -- the "extra FLOPs" of ELECTRA's recipe.
    Other tasks (squad, classify, features): the discriminator encoder only (heads under 1%:
    classify's dense H x H + H x labels runs on [CLS] alone).
    """
    h, e, v = cfg.hidden_size, cfg.embedding_size, cfg.vocab_size
    forward = _encoder(h, cfg.num_layers, cfg.intermediate_size, seq_len, e)
    if task in ("pretrain", "mlm"):
        g = cfg.generator_dims()
        hg = g["hidden_size"]
        forward += 2 * (h * h + h)
        forward += _encoder(hg, g["num_layers"], g["intermediate_size"], seq_len, e)
        forward += 2 * masked_fraction * (hg * e + e * v)
    return float(3 * forward if training else forward)
