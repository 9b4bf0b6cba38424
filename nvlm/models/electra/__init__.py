"""ELECTRA: configuration, generator/discriminator encoders, pretraining, SQuAD and classification models.

The names below are imported on first use (PEP 562), so that `nvlm.models.electra.config`
(and the CLI's help and config commands) load without importing TensorFlow.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "SIZES": "config",
    "ElectraConfig": "config",
    "ElectraBackbone": "electra_backbone",
    "ElectraClassifier": "electra_classifier",
    "ElectraPretrainer": "electra_pretrainer",
    "ElectraQuestionAnswerer": "electra_question_answerer",
    "DiscriminatorHead": "discriminator_head",
    "JointSpanHead": "joint_span_head",
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
