"""BERT: configuration, backbone, pretraining, question-answering and classification models.

The names below are imported on first use (PEP 562), so that `nvlm.models.bert.config` (and
the CLI's help and config commands) load without importing TensorFlow.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "BACKBONE_INPUTS": "bert_backbone",
    "BertBackbone": "bert_backbone",
    "BertClassifier": "bert_classifier",
    "BertPretrainer": "bert_pretrainer",
    "BertQuestionAnswerer": "bert_question_answerer",
    "SIZES": "config",
    "BertConfig": "config",
    "pad_vocab": "config",
    "flops_per_token": "flops",
    "pretraining_losses": "pretraining_losses",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
