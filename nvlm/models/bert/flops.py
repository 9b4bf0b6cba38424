"""FLOPs per token of BERT, for model FLOPs utilisation (MFU) in run summaries."""

from __future__ import annotations

from nvlm.models.bert.config import BertConfig

# Masked-LM predictions per token in BERT pretraining: 20 slots at seq 128 (phase 1) and 80 at
# seq 512 (phase 2), both 0.15625 (NVIDIA's recipe). The head runs on every slot, used or not.
PRETRAINING_MASKED_FRACTION = 20 / 128


def flops_per_token(
    cfg: BertConfig,
    seq_len: int,
    masked_fraction: float = PRETRAINING_MASKED_FRACTION,
    training: bool = True,
) -> float:
    """Matmul FLOPs per input token of one BERT step (forward + backward when `training`).

    Counting multiply-adds as 2 FLOPs, per token and per layer (H = hidden, I = intermediate,
    T = seq_len, L = layers, V = vocab):
        weights:   2 * (4 H^2 + 2 H I)   (QKV 3H^2, attention output H^2, feed-forward 2HI)
        attention: 4 * T * H             (scores Q K^T: T*H multiply-adds; context P V: same)
    plus the pooler (2 H^2 once per sequence: 2 H^2 / T per token) and the masked-LM head on
    `masked_fraction` of the tokens (transform H^2 + tied decoder H V: 2 (H^2 + H V) each).
    The backward pass costs twice the forward (gradients w.r.t. activations and weights), so a
    training step is 3x the forward:

        6 * N_layers_params + 12 * L * T * H + 6 * f * (H^2 + H V) + 6 H^2 / T

    with N_layers_params = L (4 H^2 + 2 H I), the matmul weights of the encoder. This is the
    accounting of Kaplan et al. 2020 (table 1) and of PaLM (Chowdhery et al. 2022, appendix B:
    6N + 12 L H T), with BERT's heads added. Embedding look-ups, biases, LayerNorm, softmax and
    GELU are not matmuls and are not counted (under 1% at base size), nor is the NSP head.

    Args:
        cfg: the model's configuration.
        seq_len: tokens per sequence.
        masked_fraction: masked-LM slots per token (0 for a model without the head).
        training: forward + backward (True) or forward only (False).
    """
    h, i, layers, v = cfg.hidden_size, cfg.intermediate_size, cfg.num_layers, cfg.vocab_size
    forward = (
        2 * layers * (4 * h * h + 2 * h * i)
        + 4 * layers * seq_len * h
        + 2 * masked_fraction * (h * h + h * v)
        + 2 * h * h / seq_len
    )
    return float(3 * forward if training else forward)
