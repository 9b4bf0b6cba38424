"""Triton Inference Server's model configuration (`config.pbtxt`) for a SavedModel export.

Triton reads MODEL_REPOSITORY/NAME/config.pbtxt and NAME/1/model.savedmodel/ (the TensorFlow
backend's default file name); docs/serving.md shows how an export becomes such a directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nvlm.outputs import write_text

# Triton's data types of the TensorFlow dtypes a signature has.
DATA_TYPES = {"int32": "TYPE_INT32", "int64": "TYPE_INT64", "float32": "TYPE_FP32"}


def triton_config(
    *,
    name: str,
    inputs: dict[str, dict[str, Any]],
    outputs: dict[str, dict[str, Any]],
    batch_size: int | None,
    max_batch_size: int,
) -> str:
    """The text of config.pbtxt. `inputs`/`outputs`: name -> {dtype, shape} with the batch
    dimension first (-1: open). A dynamic batch gives `max_batch_size` and dims without the
    batch dimension (Triton adds it); a fixed batch gives max_batch_size 0 and full dims, as
    Triton requires for a model that cannot take any other batch."""
    batched = batch_size is None
    lines = [
        f'name: "{name}"',
        'platform: "tensorflow_savedmodel"',
        f"max_batch_size: {max_batch_size if batched else 0}",
    ]
    for section, tensors in (("input", inputs), ("output", outputs)):
        entries = [_entry(n, t, batched) for n, t in tensors.items()]
        lines.append(f"{section} [\n" + ",\n".join(entries) + "\n]")
    return "\n".join(lines) + "\n"


def _entry(name: str, tensor: dict[str, Any], batched: bool) -> str:
    dims = tensor["shape"][1:] if batched else tensor["shape"]
    body = [f'name: "{name}"', f"data_type: {DATA_TYPES[tensor['dtype']]}"]
    if batched and not dims:
        # One value per example ([batch]): Triton wants at least one dim, reshaped away.
        body += ["dims: [ 1 ]", "reshape: { shape: [ ] }"]
    else:
        body.append(f"dims: [ {', '.join(str(d) for d in dims)} ]")
    return "  {\n" + "".join(f"    {line}\n" for line in body) + "  }"


def write_triton_config(path: Path, **kwargs: Any) -> None:
    """Write `triton_config(**kwargs)` to `path` atomically."""
    write_text(path, triton_config(**kwargs))
