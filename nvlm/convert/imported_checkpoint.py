"""Where `--init SRC` points: detect the kind of checkpoint, read it, load it into a model."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from nvlm.convert.bert_weights import CLASSIFY, MLM, NSP, SQUAD, assign_weights, group_of
from nvlm.convert.google import (
    checkpoint_prefix,
    google_name,
    read_google_config,
    read_google_weights,
)
from nvlm.convert.hf import read_hf_config, read_hf_labels, read_hf_weights, write_hf_dir
from nvlm.errors import UserError
from nvlm.models.bert import BertBackbone, BertConfig, BertPretrainer, BertQuestionAnswerer
from nvlm.run_dir import CONFIG, VOCAB

SourceKind = Literal["hf", "google", "nvlm"]

_ACCEPTED = (
    "a Hugging Face directory (config.json + model.safetensors, pytorch_model.bin or "
    "tf_model.h5), a Google checkpoint (bert_config.json + bert_model.ckpt.*) or an nvlm run "
    "directory or checkpoint"
)


def detect_source(path: str | Path) -> SourceKind:
    """Tell what `path` is: "hf" (HF model directory), "google" (TF1 name-based checkpoint
    prefix, or a directory holding one) or "nvlm" (a run directory, or an object-based
    `tf.train.Checkpoint` as the training loop writes). A UserError if none of them."""
    path = Path(path)
    if path.is_dir() and (path / "config.json").is_file():
        return "hf"
    if path.is_dir() and (path / CONFIG).is_file():
        return "nvlm"
    if not path.exists() and not Path(f"{path}.index").is_file():
        raise UserError(f"{path} does not exist", hint=f"expected {_ACCEPTED}")
    prefix = checkpoint_prefix(path)
    if prefix is None:
        raise UserError(
            f"cannot tell what kind of checkpoint {path} is", hint=f"expected {_ACCEPTED}"
        )
    import tensorflow as tf

    # tf.train.Checkpoint (object-based) files carry their object graph; TF1 Saver files don't.
    try:
        reader = tf.train.load_checkpoint(str(prefix))
    except (tf.errors.OpError, ValueError) as exc:  # a truncated or corrupt .index file
        raise UserError(
            f"cannot read checkpoint {prefix}: {' '.join(str(exc).split())}",
            hint="the files are damaged or incomplete, e.g. a cut-off copy: copy them again",
        ) from None
    if reader.has_tensor("_CHECKPOINTABLE_OBJECT_GRAPH"):
        return "nvlm"
    return "google"


@dataclass(frozen=True)
class ImportedCheckpoint:
    """A checkpoint read into memory, ready to build a model from and load.

    Args:
        kind: "hf" or "google".
        path: where it was read from.
        config: the architecture it describes (`size` is "custom" if it matches no named size).
        weights: canonical name -> array (see `nvlm.convert.bert_weights`).
        vocab: its `vocab.txt`, if it has one.
        notes: things skipped while reading (weights of heads nvlm has no model for).
        display: names a canonical weight the way the checkpoint does (for error messages).
        labels: the label names of a classification head (HF `id2label`), output i first;
            () without a head, for regression, or from a Google checkpoint (which has none).
    """

    kind: str
    path: Path
    config: BertConfig
    weights: dict[str, np.ndarray]
    vocab: Path | None = None
    notes: list[str] = field(default_factory=list)
    display: Callable[[str], str] = str
    labels: tuple[str, ...] = ()

    @property
    def groups(self) -> set[str]:
        """Weight groups present: "encoder", "pooler", "mlm", "nsp", "squad", "classify"."""
        return {group_of(name) for name in self.weights}

    @property
    def num_labels(self) -> int | None:
        """Outputs of its classification head (1: regression), or None without one."""
        bias = self.weights.get("cls/classifier/bias")
        return None if bias is None else int(bias.shape[0])


def read_checkpoint(path: str | Path) -> ImportedCheckpoint:
    """Read an HF directory or a Google checkpoint (config, weights, vocab)."""
    path = Path(path)
    kind = detect_source(path)
    if kind == "hf":
        config = read_hf_config(path)
        weights, notes, display = read_hf_weights(path)
        vocab = path / VOCAB
        labels = read_hf_labels(path) if "cls/classifier/bias" in weights else ()
        return ImportedCheckpoint(
            kind, path, config, weights, vocab if vocab.is_file() else None, notes, display,
            labels,
        )  # fmt: skip
    if kind == "google":
        prefix = checkpoint_prefix(path)
        vocab = prefix.parent / VOCAB
        config = read_google_config(prefix)
        import tensorflow as tf

        try:
            weights = read_google_weights(prefix)
        except (tf.errors.OpError, IndexError, ValueError) as exc:  # a cut-off .data file
            raise UserError(
                f"cannot read checkpoint {prefix}: {' '.join(str(exc).split())}",
                hint="the files are damaged or incomplete, e.g. a cut-off copy: copy them again",
            ) from None
        return ImportedCheckpoint(
            kind, path, config, weights, vocab if vocab.is_file() else None, display=google_name
        )
    # kind == "nvlm": the training loop's checkpoint format is the lead's; its reader
    # (load_nvlm) belongs here once that format is fixed.
    raise NotImplementedError(f"{path} is an nvlm checkpoint: load_nvlm is not written yet")


def _check_architecture(model, cfg: BertConfig, source: Path) -> None:
    # The head count cannot be seen in the weights' shapes: compare configs, not only shapes.
    backbone = getattr(model, "backbone", model)
    names = (
        "vocab_size",
        "hidden_size",
        "num_layers",
        "num_heads",
        "intermediate_size",
        "max_position",
        "type_vocab_size",
    )
    diffs = [
        f"{name} {getattr(cfg, name)} (model {getattr(backbone, name)})"
        for name in names
        if getattr(cfg, name) != getattr(backbone, name)
    ]
    if diffs:
        raise UserError(
            f"{source} has another architecture: {', '.join(diffs)}",
            hint="build the model from the checkpoint's config (nvlm.convert.read_checkpoint)",
        )


def load_checkpoint(model, source: str | Path | ImportedCheckpoint) -> list[str]:
    """Load an HF or Google checkpoint into a built BERT model, in place.

    `model` is a `BertBackbone`, `BertPretrainer`, `BertQuestionAnswerer` or `BertClassifier`
    of the checkpoint's architecture. Returns warnings for the caller to show (a head the checkpoint
    lacks keeps its initialisation; a head the model lacks is ignored); raises one UserError
    listing every missing, unexpected or mis-shaped weight.
    """
    ckpt = source if isinstance(source, ImportedCheckpoint) else read_checkpoint(source)
    _check_architecture(model, ckpt.config, ckpt.path)
    return [*ckpt.notes, *assign_weights(model, ckpt.weights, str(ckpt.path), ckpt.display)]


def model_config(model) -> BertConfig:
    """The `BertConfig` of a built BERT model (its backbone's constructor arguments)."""
    backbone = getattr(model, "backbone", model)
    dims = dict(
        hidden_size=backbone.hidden_size,
        num_layers=backbone.num_layers,
        num_heads=backbone.num_heads,
        intermediate_size=backbone.intermediate_size,
    )
    return BertConfig(
        size=BertConfig.size_of(**dims),
        dropout=backbone.dropout,
        vocab_size=backbone.vocab_size,
        max_position=backbone.max_position,
        type_vocab_size=backbone.type_vocab_size,
        attention_dropout=backbone.attention_dropout,
        initializer_range=backbone.initializer_range,
        layer_norm_eps=backbone.layer_norm_eps,
        **dims,
    )


def export_hf(
    model,
    dst: str | Path,
    vocab: str | Path | None = None,
    overwrite: bool = False,
    labels: tuple[str, ...] = (),
) -> Path:
    """Write a BERT model as a Hugging Face directory: config.json, model.safetensors and
    (if given) vocab.txt. A `BertPretrainer` becomes `BertForPreTraining`, a
    `BertQuestionAnswerer` `BertForQuestionAnswering`, a `BertClassifier`
    `BertForSequenceClassification` (`labels`: its id2label), a `BertBackbone` `BertModel`."""
    return write_hf_dir(
        model,
        model_config(model),
        Path(dst),
        Path(vocab) if vocab else None,
        overwrite,
        labels=tuple(labels),
    )


def model_for(ckpt: ImportedCheckpoint):
    """A freshly built model with the checkpoint's architecture and heads."""
    backbone = BertBackbone(**ckpt.config.to_backbone_kwargs())
    if ckpt.groups & {MLM, NSP}:
        return BertPretrainer(backbone)
    if SQUAD in ckpt.groups:
        return BertQuestionAnswerer(backbone)
    if CLASSIFY in ckpt.groups:
        from nvlm.models.bert.bert_classifier import BertClassifier

        return BertClassifier(backbone, ckpt.num_labels)
    return backbone


def convert_to_hf(
    src: str | Path, dst: str | Path, overwrite: bool = False
) -> tuple[Path, list[str]]:
    """HF or Google checkpoint -> HF directory (weights, config and vocab). Returns the
    directory and the loading warnings."""
    ckpt = read_checkpoint(src)
    model = model_for(ckpt)
    warnings = load_checkpoint(model, ckpt)
    out = export_hf(model, dst, vocab=ckpt.vocab, overwrite=overwrite, labels=ckpt.labels)
    return out, warnings
