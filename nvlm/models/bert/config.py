"""BERT hyper-parameters: the frozen `BertConfig` and the named sizes."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from nvlm.config import CUSTOM_SIZE, ModelConfig, _f
from nvlm.errors import UserError
from nvlm.models.encoder.config import pad_vocab  # noqa: F401 - BERT's configs use it

# Architecture of each named size. tiny is ours (trains in seconds on CPU, for tests and demos);
# small is Google's BERT-Small (L=4, H=512, Turc et al. 2019, "Well-Read Students Learn
# Better"); base and large are Devlin et al. 2018, table 1 footnote.
SIZES: dict[str, dict[str, int]] = {
    "tiny": dict(num_layers=2, hidden_size=64, num_heads=2, intermediate_size=256),
    "small": dict(num_layers=4, hidden_size=512, num_heads=8, intermediate_size=2048),
    "base": dict(num_layers=12, hidden_size=768, num_heads=12, intermediate_size=3072),
    "large": dict(num_layers=24, hidden_size=1024, num_heads=16, intermediate_size=4096),
}


# Fields that set how SQuAD answers are decoded, not the network.
DECODING = ("n_best", "max_answer_len", "null_threshold")
# Fields of the classification head (task "classify"), not of the encoder.
CLASSIFICATION = ("num_labels", "labels", "classifier_dropout")


@dataclass(frozen=True)
class BertConfig(ModelConfig):
    """Hyper-parameters of a BERT model (the `model.` section of a BERT run's config).

    Build one from a named size with `BertConfig.from_size("base", vocab_size=...)`; the
    defaults of the fields are BERT-base. `to_backbone_kwargs()` gives the arguments of
    `BertBackbone`.

    Args:
        size: (from `ModelConfig`) tiny | small | base | large, or "custom" for an imported
            checkpoint whose architecture is none of them.
        dropout: (from `ModelConfig`) dropout rate of the embeddings and of every block's
            sub-layer outputs.
        vocab_size: rows of the word embedding (pad a data vocabulary with `pad_vocab`).
        hidden_size: model width.
        num_layers: number of encoder blocks.
        num_heads: attention heads per block.
        intermediate_size: feed-forward width.
        max_position: longest sequence (rows of the position table).
        type_vocab_size: number of segment ids.
        attention_dropout: dropout rate on attention probabilities.
        initializer_range: standard deviation of the truncated normal initialiser.
        layer_norm_eps: LayerNorm epsilon.
        n_best, max_answer_len: SQuAD decoding, answers listed per question and longest answer
            in tokens (the reference run_squad.py's n_best_size 20, max_answer_length 30).
        null_threshold: SQuAD v2.0, answer "" when null score - best span score exceeds it
            (the reference scripts' null_score_diff_threshold 0.0).
        num_labels: outputs of the classification head (task "classify"); 1 is regression
            (one float per input, Hugging Face's `problem_type: regression`).
        labels: the label names, index i naming output i (Hugging Face's `id2label`); empty
            for regression or when unnamed (exported as LABEL_0, LABEL_1, ...).
        classifier_dropout: dropout before the classification layer; None: `dropout` (as
            Hugging Face's `classifier_dropout`).
    """

    vocab_size: int = 30528
    hidden_size: int = 768
    num_layers: int = 12
    num_heads: int = 12
    intermediate_size: int = 3072
    max_position: int = 512
    type_vocab_size: int = 2
    attention_dropout: float = 0.1
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    n_best: int = 20
    max_answer_len: int = 30
    null_threshold: float = 0.0
    num_labels: int = _f(2, ge=1)
    labels: tuple[str, ...] = ()
    classifier_dropout: float | None = _f(None, ge=0, lt=1)

    def __post_init__(self) -> None:
        if self.size not in SIZES and self.size != CUSTOM_SIZE:
            raise UserError(
                f"unknown BERT size {self.size!r}",
                hint=f"choose one of {', '.join(SIZES)}",
            )
        for name in (
            "vocab_size",
            "hidden_size",
            "num_layers",
            "num_heads",
            "intermediate_size",
            "max_position",
            "type_vocab_size",
            "n_best",
            "max_answer_len",
        ):
            if getattr(self, name) <= 0:
                raise UserError(f"model.{name} must be positive, got {getattr(self, name)}")
        for name in ("dropout", "attention_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise UserError(f"model.{name} must be in [0, 1), got {getattr(self, name)}")
        if self.hidden_size % self.num_heads:
            raise UserError(
                f"model.hidden_size {self.hidden_size} is not divisible by "
                f"model.num_heads {self.num_heads}"
            )
        check_labels(self.num_labels, self.labels)

    @classmethod
    def from_size(cls, size: str, vocab_size: int, **overrides: Any) -> BertConfig:
        """The named architecture `size` with `vocab_size` rows and optional overrides."""
        if size not in SIZES:
            raise UserError(f"unknown BERT size {size!r}", hint=f"choose one of {', '.join(SIZES)}")
        return cls(size=size, vocab_size=vocab_size, **{**SIZES[size], **overrides})

    @staticmethod
    def size_of(hidden_size: int, num_layers: int, num_heads: int, intermediate_size: int) -> str:
        """The name of the size with this architecture, or "custom"."""
        arch = dict(
            num_layers=num_layers,
            hidden_size=hidden_size,
            num_heads=num_heads,
            intermediate_size=intermediate_size,
        )
        return next((name for name, dims in SIZES.items() if dims == arch), CUSTOM_SIZE)

    def replace(self, **changes: Any) -> BertConfig:
        return dataclasses.replace(self, **changes)

    def to_backbone_kwargs(self) -> dict[str, Any]:
        """Arguments of `BertBackbone` (every field but `size`, the SQuAD decoding ones and
        the classification head's)."""
        kwargs = dataclasses.asdict(self)
        for name in ("size", *DECODING, *CLASSIFICATION):
            del kwargs[name]
        return kwargs


def check_labels(num_labels: int, labels: tuple[str, ...]) -> None:
    """One-line errors for label names that do not fit the head (BERT's and ELECTRA's)."""
    if num_labels < 1:
        raise UserError(f"model.num_labels must be positive, got {num_labels}")
    if labels and len(labels) != num_labels:
        raise UserError(
            f"model.labels names {len(labels)} labels but model.num_labels is {num_labels} "
            "(give one name per output, or no names)"
        )
    if len(set(labels)) != len(labels):
        twice = sorted({name for name in labels if labels.count(name) > 1})
        raise UserError(f"model.labels names {', '.join(map(repr, twice))} more than once")
