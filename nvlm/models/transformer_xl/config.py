"""Transformer-XL hyper-parameters: the frozen `TransformerXLConfig` and the named sizes."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

from nvlm.config import CUSTOM_SIZE, ModelConfig
from nvlm.errors import UserError


def _f(default: Any, **bounds: float) -> Any:
    """A field with range bounds (ge/gt/le/lt) that nvlm.config validation enforces."""
    return field(default=default, metadata={"bounds": bounds})


# Adaptive-softmax cluster boundaries of the WikiText-103 recipe (267,735 words): the 19,997
# most frequent words in the head, then tails of 20k, 160k and the rest (X1, Dai et al. 2019).
WT103_CUTOFFS = (19997, 39997, 199997)
WT103_VOCAB = 267735

# A recipe cutoff is kept only when at least this many words lie beyond it: a smaller last
# cluster costs an extra head entry and projection for a few rare words and saves almost
# nothing. So with the WikiText-103 recipe a vocabulary under 20,997 words (19,997 + 1,000)
# gets a plain softmax, WikiText-2's 33,278 words get [19997].
MIN_TAIL_WORDS = 1000


def fit_cutoffs(vocab_size: int, recipe: tuple[int, ...] = WT103_CUTOFFS) -> tuple[int, ...]:
    """The recipe's cutoffs that fit a vocabulary: those with at least `MIN_TAIL_WORDS` words
    after them; () (a plain softmax) when none does.

    >>> fit_cutoffs(33278)
    (19997,)
    """
    return tuple(c for c in recipe if vocab_size - c >= MIN_TAIL_WORDS)


# tiny: ours, trains in seconds on CPU (tests, demo), full softmax. small: ours, ~1/8 of base's
# compute, for CPU experiments. base: X1's WikiText-103 base (16 layers, d_model 512).
# large: the paper's 18-layer WikiText-103 model (Dai et al. 2019, appendix: d_model 1024,
# d_inner 4096, 16 heads, div_val 4, dropout 0.2, dropatt 0.2).
SIZES: dict[str, dict[str, Any]] = {
    "tiny": dict(n_layer=2, d_model=64, n_head=2, d_head=32, d_inner=256, cutoffs=(), div_val=1),
    "small": dict(n_layer=6, d_model=256, n_head=4, d_head=64, d_inner=1024, div_val=1),
    "base": dict(n_layer=16, d_model=512, n_head=8, d_head=64, d_inner=2048, div_val=1),
    "large": dict(
        n_layer=18,
        d_model=1024,
        n_head=16,
        d_head=64,
        d_inner=4096,
        div_val=4,
        dropout=0.2,
        attention_dropout=0.2,
    ),  # fmt: skip
}

# The fields that are the architecture (what a checkpoint fixes); the rest are run settings.
ARCHITECTURE = (
    "vocab_size", "n_layer", "d_model", "n_head", "d_head", "d_inner", "d_embed", "div_val",
    "cutoffs", "tie_weight", "tie_projs", "proj_share_all_but_first", "untie_r", "layer_norm_eps",
)  # fmt: skip


@dataclass(frozen=True)
class TransformerXLConfig(ModelConfig):
    """Hyper-parameters of a Transformer-XL language model (the `model.` section of a run).

    The defaults are X1's WikiText-103 base model; `data.seq_len` is the segment length
    (tgt_len). Memory settings are run settings, not weights: evaluation uses other values
    (the preset's `transformer_xl.eval` stage: mem_len 640, clamp_len 400, same_length).

    Args:
        size: (from `ModelConfig`) tiny | small | base | large, or "custom".
        dropout: (from `ModelConfig`) dropout on embeddings, positional encodings, sub-layer
            outputs and the final hidden state.
        vocab_size: words in the vocabulary (fixed by the `nvlm data lm` directory).
        n_layer: decoder layers.
        d_model: model width.
        n_head: attention heads.
        d_head: width of each head (n_head * d_head need not equal d_model).
        d_inner: feed-forward width.
        d_embed: embedding width of the first cluster; 0 means d_model.
        div_val: each further adaptive cluster has an embedding d_embed / div_val**i wide.
        cutoffs: adaptive-softmax cluster boundaries (increasing, inside the vocabulary);
            empty for a plain softmax. None (the default, when neither the size nor the user
            sets them): the WikiText-103 recipe's cutoffs that fit `vocab_size` (`fit_cutoffs`).
        tie_weight: the output layer reuses the embedding tables.
        tie_projs: the output layer reuses the embedding projections...
        proj_share_all_but_first: ...of every cluster but the first (X1's WikiText-103 choice).
        untie_r: one pair of relative-position biases per layer instead of one shared pair.
        attention_dropout: dropout on attention probabilities (the paper's dropatt).
        mem_len: hidden states per layer kept from earlier segments (0: no recurrence).
        clamp_len: relative distances beyond this use its encoding; <= 0 turns it off.
        same_length: every query attends to the same number (mem_len) of positions.
        init_std: standard deviation of the normal weight initialiser.
        proj_init_std: ... of the adaptive embedding projections.
        layer_norm_eps: LayerNorm epsilon.
    """

    uses_max_predictions: ClassVar[bool] = False  # data.max_predictions is a BERT setting

    dropout: float = _f(0.1, ge=0, lt=1)
    vocab_size: int = _f(WT103_VOCAB, ge=2)
    n_layer: int = _f(16, ge=1)
    d_model: int = _f(512, ge=1)
    n_head: int = _f(8, ge=1)
    d_head: int = _f(64, ge=1)
    d_inner: int = _f(2048, ge=1)
    d_embed: int = _f(0, ge=0)
    div_val: int = _f(1, ge=1)
    cutoffs: tuple[int, ...] | None = None
    tie_weight: bool = True
    tie_projs: bool = True
    proj_share_all_but_first: bool = True
    untie_r: bool = False
    attention_dropout: float = _f(0.0, ge=0, lt=1)
    mem_len: int = _f(192, ge=0)
    clamp_len: int = -1
    same_length: bool = False
    init_std: float = _f(0.02, gt=0)
    proj_init_std: float = _f(0.01, gt=0)
    layer_norm_eps: float = _f(1e-5, gt=0)

    def __post_init__(self) -> None:
        if self.size not in SIZES and self.size != CUSTOM_SIZE:
            raise UserError(
                f"unknown Transformer-XL size {self.size!r}",
                hint=f"choose one of {', '.join(SIZES)}",
            )
        if self.cutoffs is None:
            # Derived here, not in the plugin, so that every caller (pretrain, eval, bench) gets
            # the same cutoffs for a vocabulary; explicit cutoffs are checked, never adjusted.
            object.__setattr__(self, "cutoffs", fit_cutoffs(self.vocab_size))
        cuts = list(self.cutoffs)
        if any(b <= a for a, b in zip(cuts, cuts[1:], strict=False)) or (cuts and cuts[0] <= 0):
            raise UserError(
                f"model.cutoffs={cuts} must be positive and strictly increasing "
                "(e.g. [19997, 39997, 199997], or [] for a plain softmax)"
            )
        if cuts and cuts[-1] >= self.vocab_size:
            raise UserError(
                f"model.cutoffs={cuts} reach beyond the vocabulary of {self.vocab_size:,} words "
                f"(every cutoff must be < {self.vocab_size}: e.g. --set 'model.cutoffs="
                f"[{max(1, self.vocab_size // 2)}]', or --set 'model.cutoffs=[]' for a plain softmax)"
            )
        smallest = self.embed_dim // self.div_val ** len(cuts)
        if smallest < 1:
            raise UserError(
                f"model.div_val={self.div_val} leaves the last of {len(cuts) + 1} clusters no "
                f"embedding width (d_embed {self.embed_dim}); lower model.div_val"
            )

    @property
    def embed_dim(self) -> int:
        return self.d_embed or self.d_model

    def replace(self, **changes: Any) -> TransformerXLConfig:
        return dataclasses.replace(self, **changes)

    def architecture(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ARCHITECTURE}

    def to_model_kwargs(self) -> dict[str, Any]:
        """Arguments of `TransformerXL` (every field but `size` and `mem_len`)."""
        kwargs = dataclasses.asdict(self)
        for name in ("size", "mem_len"):
            del kwargs[name]
        kwargs["cutoffs"] = list(self.cutoffs)
        return kwargs
