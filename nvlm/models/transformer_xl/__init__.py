"""Transformer-XL: configuration, model, training memories, evaluation and inference.

The names below are imported on first use (PEP 562), so that `nvlm.models.transformer_xl.config`
loads without importing TensorFlow.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "SIZES": "config",
    "TransformerXLConfig": "config",
    "TransformerXL": "transformer_xl",
    "SegmentMemory": "segment_memory",
    "evaluate_stream": "evaluation",
    "flops_per_token": "flops",
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
