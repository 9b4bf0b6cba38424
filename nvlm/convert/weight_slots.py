"""What the BERT and ELECTRA weight tables share: a slot (model variable <-> canonical names),
export of slots to canonical arrays, and the checked copy of canonical arrays into slots.

nvlm fuses the query, key and value kernels into one variable; its slot lists the three
canonical names, which are concatenated along the last (Keras) axis on load and split on
export (exact copies, so a round trip is bit-identical).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass

import keras
import numpy as np

from nvlm.errors import UserError


@dataclass(frozen=True)
class Slot:
    names: tuple[str, ...]  # canonical names, concatenated along the last (Keras) axis
    variable: keras.Variable
    group: str
    transposed: bool = False  # canonical [out, in] (PyTorch) vs Keras [in, out]


def export_slots(slots: list[Slot]) -> dict[str, np.ndarray]:
    """Canonical name -> float32 array of every slot (fused QKV split, layouts canonical)."""
    weights = {}
    for slot in slots:
        value = keras.ops.convert_to_numpy(slot.variable)
        parts = np.split(value, len(slot.names), axis=-1) if len(slot.names) > 1 else [value]
        for name, part in zip(slot.names, parts, strict=True):
            weights[name] = np.ascontiguousarray(part.T if slot.transposed else part)
    return weights


def _listing(label: str, items: list[str], limit: int = 6) -> str:
    shown = ", ".join(items[:limit])
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return f"{label} ({len(items)}): {shown}{more}"


def assign_slots(
    slots: list[Slot],
    weights: dict[str, np.ndarray],
    source: str,
    *,
    group_of: Callable[[str], str],
    titles: dict[str, str],
    required: Collection[str],
    strict: Collection[str] | None,
    hint: str,
    display: Callable[[str], str] = str,
    part_shapes: bool = False,
) -> list[str]:
    """Copy canonical `weights` into `slots`; return warnings, raise one UserError on mismatch.

    The groups in `required` must be complete. Any other group that `weights` lacks ENTIRELY
    keeps its initialisation (a warning); one present in part is an error. An unknown name in
    a group of `strict` (None: every group of the model) is an error; the groups of the other
    unknown names are ignored (a warning). `display` names a canonical weight the way the
    source's format does; `titles` names a group; `part_shapes` writes a shape mismatch with
    the shape of each of the source's arrays rather than of their concatenation.
    """
    present: dict[str, bool] = {}
    for slot in slots:
        present[slot.group] = present.get(slot.group, False) or any(
            name in weights for name in slot.names
        )
    absent = {g for g, found in present.items() if not found and g not in required}
    strict = set(present) if strict is None else set(strict)

    missing, mismatched, values = [], [], []
    for slot in slots:
        if slot.group in absent:
            continue
        lacking = [name for name in slot.names if name not in weights]
        if lacking:
            missing += [display(name) for name in lacking]
            continue
        parts = [np.asarray(weights[name]) for name in slot.names]
        parts = [p.T if slot.transposed else p for p in parts]
        value = np.concatenate(parts, axis=-1) if len(parts) > 1 else parts[0]
        if tuple(value.shape) != tuple(slot.variable.shape):
            names = "|".join(display(name) for name in slot.names)
            shapes = (
                "checkpoint " + "+".join(str(list(p.shape)) for p in parts)
                if part_shapes
                else str(list(value.shape))
            )
            mismatched.append(f"{names} {shapes} vs model {list(slot.variable.shape)}")
        values.append((slot.variable, value))
    known = {name for slot in slots for name in slot.names}
    unused = sorted(set(weights) - known)
    unexpected = [display(name) for name in unused if group_of(name) in strict]
    if missing or mismatched or unexpected:
        problems = [
            _listing(label, items)
            for label, items in (
                ("missing", missing),
                ("unexpected", unexpected),
                ("shape mismatch", mismatched),
            )
            if items
        ]
        raise UserError(f"{source} does not match the model: {'; '.join(problems)}", hint=hint)

    for variable, value in values:
        variable.assign(value.astype(variable.dtype))
    warnings = [
        f"{source} has no {titles[group]}: it keeps its random initialisation"
        for group in sorted(absent)
    ]
    ignored = sorted({group_of(name) for name in unused} - strict)
    warnings += [f"{source}: ignored its {titles[group]}" for group in ignored]
    return warnings
