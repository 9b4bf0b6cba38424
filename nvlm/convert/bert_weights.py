"""The one table between nvlm's BERT variables and checkpoint weight names.

Every importer translates its format into CANONICAL names and layouts; every exporter
translates from them. Canonical names are Google's TF1 BERT names without the `bert/` scope
(`encoder/layer_3/attention/self/query/kernel`), and canonical layouts are Keras's: a dense
kernel is `[in, out]`, an embedding table `[rows, width]`. The two heads whose Google weights
are stored transposed (`cls/seq_relationship/output_weights`, `cls/squad/output_weights`,
both `[2, hidden]`) are canonically `.../kernel` `[hidden, 2]`.

nvlm fuses the query, key and value kernels into one `[hidden, 3 * hidden]` variable; its slot
lists the three canonical names, which are concatenated on load and split on export (exact
copies, so a round trip is bit-identical).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import keras
import numpy as np

from nvlm.errors import UserError

# Weight groups. Only the encoder is required; the others may be absent from a checkpoint
# (an HF BertModel has no heads, a BertForMaskedLM no pooler) and are then left as initialised.
ENCODER, POOLER, MLM, NSP, SQUAD = "encoder", "pooler", "mlm", "nsp", "squad"
GROUP_TITLES = {
    POOLER: "pooler",
    MLM: "masked-LM head (cls/predictions)",
    NSP: "next-sentence head (cls/seq_relationship)",
    SQUAD: "span head (cls/squad, qa_outputs)",
}
HEAD_PREFIXES = {"cls/predictions/": MLM, "cls/seq_relationship/": NSP, "cls/squad/": SQUAD}


@dataclass(frozen=True)
class _Slot:
    names: tuple[str, ...]  # canonical names, concatenated along the last axis
    variable: keras.Variable
    group: str


def group_of(name: str) -> str:
    """The weight group of a canonical name."""
    if name.startswith("pooler/"):
        return POOLER
    return next((g for prefix, g in HEAD_PREFIXES.items() if name.startswith(prefix)), ENCODER)


def _dense(prefix: str, layer, group: str) -> list[_Slot]:
    return [
        _Slot((f"{prefix}/kernel",), layer.kernel, group),
        _Slot((f"{prefix}/bias",), layer.bias, group),
    ]


def _norm(prefix: str, layer, group: str) -> list[_Slot]:
    return [
        _Slot((f"{prefix}/gamma",), layer.gamma, group),
        _Slot((f"{prefix}/beta",), layer.beta, group),
    ]


def _backbone_slots(backbone) -> list[_Slot]:
    emb = backbone.embeddings
    slots = [
        _Slot(("embeddings/word_embeddings",), emb.word_embeddings.embeddings, ENCODER),
        _Slot(("embeddings/position_embeddings",), emb.position_embeddings, ENCODER),
        _Slot(("embeddings/token_type_embeddings",), emb.token_type_embeddings.embeddings, ENCODER),
        *_norm("embeddings/LayerNorm", emb.norm, ENCODER),
    ]
    for i, block in enumerate(backbone.blocks):
        p = f"encoder/layer_{i}"
        qkv = [f"{p}/attention/self/{part}" for part in ("query", "key", "value")]
        slots += [
            _Slot(tuple(f"{n}/kernel" for n in qkv), block.attention.qkv.kernel, ENCODER),
            _Slot(tuple(f"{n}/bias" for n in qkv), block.attention.qkv.bias, ENCODER),
            *_dense(f"{p}/attention/output/dense", block.attention.output_dense, ENCODER),
            *_norm(f"{p}/attention/output/LayerNorm", block.attention_norm, ENCODER),
            *_dense(f"{p}/intermediate/dense", block.intermediate, ENCODER),
            *_dense(f"{p}/output/dense", block.output_dense, ENCODER),
            *_norm(f"{p}/output/LayerNorm", block.output_norm, ENCODER),
        ]
    return slots + _dense("pooler/dense", backbone.pooler, POOLER)


def model_slots(model) -> list[_Slot]:
    """Slots of a `BertBackbone`, `BertPretrainer` or `BertQuestionAnswerer`."""
    backbone = getattr(model, "backbone", model)
    slots = _backbone_slots(backbone)
    if hasattr(model, "mlm_head"):
        head = model.mlm_head
        slots += [
            *_dense("cls/predictions/transform/dense", head.transform, MLM),
            *_norm("cls/predictions/transform/LayerNorm", head.norm, MLM),
            _Slot(("cls/predictions/output_bias",), head.output_bias, MLM),
            *_dense("cls/seq_relationship", model.nsp_head, NSP),
        ]
    if hasattr(model, "span_head"):
        slots += _dense("cls/squad", model.span_head, SQUAD)
    return slots


def model_groups(model) -> set[str]:
    return {slot.group for slot in model_slots(model)}


def export_weights(model) -> dict[str, np.ndarray]:
    """Canonical name -> float32 array for every weight of `model` (fused QKV split)."""
    weights = {}
    for slot in model_slots(model):
        value = keras.ops.convert_to_numpy(slot.variable)
        parts = np.split(value, len(slot.names), axis=-1) if len(slot.names) > 1 else [value]
        for name, part in zip(slot.names, parts, strict=True):
            weights[name] = np.ascontiguousarray(part)
    return weights


def _listing(label: str, items: list[str], limit: int = 6) -> str:
    shown = ", ".join(items[:limit])
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return f"{label} ({len(items)}): {shown}{more}"


def assign_weights(
    model,
    weights: dict[str, np.ndarray],
    source: str,
    display: Callable[[str], str] = str,
) -> list[str]:
    """Copy canonical `weights` into `model`; return warnings, raise one UserError on mismatch.

    The error lists every weight the checkpoint lacks, every checkpoint weight nvlm does not
    know, and every shape mismatch. A pooler or head that the checkpoint lacks ENTIRELY, or
    that it has and `model` does not, is only a warning: that is how the checkpoints of
    different tasks legitimately differ (an HF `BertModel` has no heads, a `BertForMaskedLM` no
    pooler, a SQuAD checkpoint no pretraining heads). `display` names a canonical weight the
    way the checkpoint's format does, for the error message.
    """
    slots = model_slots(model)
    model_names = {name for slot in slots for name in slot.names}
    present = {slot.group: False for slot in slots}
    for slot in slots:
        present[slot.group] |= any(name in weights for name in slot.names)
    absent_groups = {g for g, found in present.items() if not found and g != ENCODER}

    missing, mismatched, values = [], [], []
    for slot in slots:
        if slot.group in absent_groups:
            continue
        absent = [name for name in slot.names if name not in weights]
        if absent:
            missing += [display(name) for name in absent]
            continue
        parts = [np.asarray(weights[name]) for name in slot.names]
        value = np.concatenate(parts, axis=-1) if len(parts) > 1 else parts[0]
        if tuple(value.shape) != tuple(slot.variable.shape):
            shapes = "+".join(str(list(p.shape)) for p in parts)
            names = "|".join(display(name) for name in slot.names)
            mismatched.append(f"{names} checkpoint {shapes} vs model {list(slot.variable.shape)}")
        values.append((slot.variable, value))
    unused = sorted(set(weights) - model_names)
    unexpected = [display(name) for name in unused if group_of(name) == ENCODER]
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
        raise UserError(
            f"{source} does not match the model: {'; '.join(problems)}",
            hint="build the model from the checkpoint's own config (nvlm.convert.read_checkpoint)",
        )

    for variable, value in values:
        variable.assign(value.astype(variable.dtype))
    warnings = [
        f"{source} has no {GROUP_TITLES[group]}: it keeps its random initialisation"
        for group in sorted(absent_groups)
    ]
    ignored = sorted({group_of(name) for name in unused})
    warnings += [f"{source}: ignored its {GROUP_TITLES[group]}" for group in ignored]
    return warnings
