"""ELECTRA hyper-parameters: the frozen `ElectraConfig` and the named sizes."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from nvlm.config import CUSTOM_SIZE, ModelConfig, _f
from nvlm.errors import UserError
from nvlm.models.bert.config import check_labels

# Discriminator architecture of each named size and the generator fraction of its recipe.
# small/base/large: Clark et al. 2020 (ELECTRA), appendix table 6 ("Generator Size" is the
# multiplier of hidden size, FFN size and attention heads: small 1/4, base 1/3, large 1/4;
# the generator keeps every layer). ELECTRA-Small has a 128-wide embedding projected to its
# hidden size 256; base and large embed at the hidden size. tiny is ours: it trains in
# seconds on CPU and has embedding size != hidden size, so tests exercise the projection.
SIZES: dict[str, dict[str, Any]] = {
    "tiny": dict(
        num_layers=2,
        hidden_size=64,
        num_heads=2,
        intermediate_size=256,
        embedding_size=32,
        generator_hidden_fraction=0.5,
        qa_hidden_size=64,
    ),
    "small": dict(
        num_layers=12,
        hidden_size=256,
        num_heads=4,
        intermediate_size=1024,
        embedding_size=128,
        generator_hidden_fraction=0.25,
    ),
    "base": dict(
        num_layers=12,
        hidden_size=768,
        num_heads=12,
        intermediate_size=3072,
        embedding_size=768,
        generator_hidden_fraction=1 / 3,
    ),
    "large": dict(
        num_layers=24,
        hidden_size=1024,
        num_heads=16,
        intermediate_size=4096,
        embedding_size=1024,
        generator_hidden_fraction=0.25,
    ),
}

# The fields that describe the discriminator's architecture (what a checkpoint fixes).
ARCHITECTURE = (
    "vocab_size",
    "hidden_size",
    "num_layers",
    "num_heads",
    "intermediate_size",
    "embedding_size",
    "max_position",
    "type_vocab_size",
    "layer_norm_eps",
)


@dataclass(frozen=True)
class ElectraConfig(ModelConfig):
    """Hyper-parameters of an ELECTRA model (the `model.` section of an ELECTRA run's config).

    The discriminator is described field by field; the generator is derived from it
    (`generator_dims()`): hidden size, feed-forward size and heads times
    `generator_hidden_fraction`, layers times `generator_layers_fraction`. Generator and
    discriminator share the token, position and segment embeddings (and their LayerNorm);
    each projects them to its own hidden size when the widths differ.

    Args:
        size, dropout: (from `ModelConfig`) tiny | small | base | large | custom; dropout of the
            embeddings and block outputs.
        vocab_size .. layer_norm_eps: the discriminator encoder, as `BertConfig`, plus
            `embedding_size` (width of the shared embedding tables).
        generator_hidden_fraction: generator width / discriminator width (recipe: 1/4, 1/3).
        generator_layers_fraction: generator depth / discriminator depth (recipe: 1).
        generator_weight, discriminator_weight: loss = g x MLM + d x RTD (recipe: 1 and 50).
        temperature: sampling temperature of the generator's softmax (recipe: 1).
        disallow_correct: never sample the original token (Clark et al. 2020, appendix; off in
            the recipe).
        mask_token_id, cls_token_id, sep_token_id: ids of [MASK], [CLS], [SEP] in the vocab
            (set from the shards' vocab.txt; [CLS]/[SEP] are never masked).
        qa_head: SQuAD head, "joint" (start, then end given the start; beam search; an
            answerability classifier for v2.0) or "simple" (independent start/end logits).
        qa_hidden_size: width of the joint head's hidden layers (512 in ELECTRA's code).
        answerable_weight: weight of the answerability loss (v2.0; 0.5 in ELECTRA's code).
        beam_size: start positions x end positions kept per window by the joint head.
        n_best, max_answer_len: answers listed per question; longest answer in tokens.
        null_threshold: SQuAD v2.0 "no answer" threshold of the joint head (NVIDIA's -5.6).
        num_labels: outputs of the classification head (task "classify"); 1 is regression.
        labels: the label names, index i naming output i (Hugging Face's `id2label`); empty
            for regression or when unnamed.
        classifier_dropout: dropout of the classification head (before each of its two dense
            layers); None: `dropout` (as Hugging Face's `classifier_dropout`).
    """

    vocab_size: int = _f(30528, ge=1)
    hidden_size: int = _f(768, ge=1)
    num_layers: int = _f(12, ge=1)
    num_heads: int = _f(12, ge=1)
    intermediate_size: int = _f(3072, ge=1)
    embedding_size: int = _f(768, ge=1)
    max_position: int = _f(512, ge=1)
    type_vocab_size: int = _f(2, ge=1)
    attention_dropout: float = _f(0.1, ge=0, lt=1)
    initializer_range: float = _f(0.02, gt=0)
    layer_norm_eps: float = _f(1e-12, gt=0)
    generator_hidden_fraction: float = _f(1 / 3, gt=0, le=1)
    generator_layers_fraction: float = _f(1.0, gt=0, le=1)
    generator_weight: float = _f(1.0, ge=0)
    discriminator_weight: float = _f(50.0, ge=0)
    temperature: float = _f(1.0, gt=0)
    disallow_correct: bool = False
    mask_token_id: int = _f(4, ge=0)  # nvlm vocabs: [PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3 [MASK]=4
    cls_token_id: int = _f(2, ge=0)
    sep_token_id: int = _f(3, ge=0)
    qa_head: Literal["joint", "simple"] = "joint"
    qa_hidden_size: int = _f(512, ge=1)
    answerable_weight: float = _f(0.5, ge=0)
    beam_size: int = _f(4, ge=1)
    n_best: int = _f(20, ge=1)
    max_answer_len: int = _f(30, ge=1)
    null_threshold: float = -5.6
    num_labels: int = _f(2, ge=1)
    labels: tuple[str, ...] = ()
    classifier_dropout: float | None = _f(None, ge=0, lt=1)

    def __post_init__(self) -> None:
        if self.size not in SIZES and self.size != CUSTOM_SIZE:
            raise UserError(
                f"unknown ELECTRA size {self.size!r}", hint=f"choose one of {', '.join(SIZES)}"
            )
        if self.hidden_size % self.num_heads:
            raise UserError(
                f"model.hidden_size {self.hidden_size} is not divisible by "
                f"model.num_heads {self.num_heads}"
            )
        gen = self.generator_dims()
        if gen["hidden_size"] % gen["num_heads"]:
            raise UserError(
                f"the generator's hidden size {gen['hidden_size']} (model.hidden_size x "
                f"model.generator_hidden_fraction) is not divisible by its {gen['num_heads']} "
                "heads (choose another model.generator_hidden_fraction)"
            )
        check_labels(self.num_labels, self.labels)

    def validate(self, run) -> None:
        # Training stages run at data.seq_len; evaluation takes it from its data later.
        training = run.stage.startswith("pretrain") or run.stage == "squad"
        if training and run.data.seq_len > self.max_position:
            raise UserError(
                f"data.seq_len={run.data.seq_len} exceeds model.max_position={self.max_position}"
            )

    def generator_dims(self) -> dict[str, int]:
        """The generator's hidden size, layers, heads and feed-forward size."""
        f = self.generator_hidden_fraction
        return dict(
            hidden_size=max(1, round(self.hidden_size * f)),
            num_layers=max(1, round(self.num_layers * self.generator_layers_fraction)),
            num_heads=max(1, round(self.num_heads * f)),
            intermediate_size=max(1, round(self.intermediate_size * f)),
        )

    def replace(self, **changes: Any) -> ElectraConfig:
        return dataclasses.replace(self, **changes)

    def backbone_kwargs(self, part: str = "discriminator") -> dict[str, Any]:
        """Arguments of `ElectraBackbone` for the discriminator or the generator."""
        dims = dict(
            hidden_size=self.hidden_size,
            num_layers=self.num_layers,
            num_heads=self.num_heads,
            intermediate_size=self.intermediate_size,
        )
        if part == "generator":
            dims = self.generator_dims()
        elif part != "discriminator":
            raise ValueError(f"part must be discriminator or generator, not {part!r}")
        return dict(
            vocab_size=self.vocab_size,
            embedding_size=self.embedding_size,
            max_position=self.max_position,
            type_vocab_size=self.type_vocab_size,
            dropout=self.dropout,
            attention_dropout=self.attention_dropout,
            initializer_range=self.initializer_range,
            layer_norm_eps=self.layer_norm_eps,
            **dims,
        )

    @staticmethod
    def size_of(**arch: int) -> str:
        """The name of the size whose discriminator has this architecture, or "custom"."""
        keys = ("num_layers", "hidden_size", "num_heads", "intermediate_size", "embedding_size")
        for name, dims in SIZES.items():
            if all(dims[k] == arch.get(k) for k in keys):
                return name
        return CUSTOM_SIZE
