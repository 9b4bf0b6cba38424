"""Checkpoint interchange: Hugging Face and Google BERT checkpoints in, Hugging Face out.

    kind = detect_source("path/to/bert-base-uncased")        # "hf" | "google" | "nvlm"
    ckpt = read_checkpoint("path/to/bert-base-uncased")      # config, weights, vocab
    model = BertPretrainer(BertBackbone(**ckpt.config.to_backbone_kwargs()))
    warnings = load_checkpoint(model, ckpt)                  # UserError on any mismatch
    export_hf(model, "out/hf-dir", vocab=ckpt.vocab)
    read_hf_labels("path/to/classifier")                     # ("negative", "positive")

See docs/checkpoints.md for the formats and the name mapping.
"""

from nvlm.convert.hf import read_hf_labels
from nvlm.convert.imported_checkpoint import (
    ImportedCheckpoint,
    convert_to_hf,
    detect_source,
    export_hf,
    load_checkpoint,
    model_config,
    model_for,
    read_checkpoint,
)

__all__ = [
    "ImportedCheckpoint",
    "convert_to_hf",
    "detect_source",
    "export_hf",
    "load_checkpoint",
    "model_config",
    "model_for",
    "read_checkpoint",
    "read_hf_labels",
]
