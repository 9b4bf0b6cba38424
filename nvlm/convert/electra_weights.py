"""The one table between nvlm's ELECTRA variables and checkpoint weight names.

Canonical names are Hugging Face's, without the `electra.` prefix, with the encoder's part
in front: `embeddings.word_embeddings.weight` (shared by generator and discriminator),
`discriminator:encoder.layer.3.attention.self.query.weight`, `generator:embeddings_project.
bias`, and the heads under their HF names (`discriminator_predictions.*`,
`generator_predictions.*`, `generator_lm_head.bias`, `qa_outputs.*`). The joint SQuAD head has
no Hugging Face counterpart and is named `qa_joint.*` (nvlm's own). Canonical VALUES are in
Hugging Face (PyTorch) layouts: a linear weight is `[out, in]`, transposed into Keras's
`[in, out]` kernel. nvlm's fused QKV kernel is the concatenation of the three.
See docs/electra.md for the table.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np

from nvlm.errors import UserError

# Weight groups: the embeddings and the discriminator encoder are required by every model;
# the rest may be absent from a checkpoint (and are then left as initialised, with a warning).
EMBEDDINGS, DISCRIMINATOR, GENERATOR = "embeddings", "discriminator", "generator"
RTD_HEAD, MLM_HEAD, QA_SIMPLE, QA_JOINT = "rtd_head", "mlm_head", "qa_simple", "qa_joint"
REQUIRED = (EMBEDDINGS, DISCRIMINATOR)
GROUP_TITLES = {
    GENERATOR: "generator encoder",
    RTD_HEAD: "discriminator head (discriminator_predictions)",
    MLM_HEAD: "generator head (generator_predictions, generator_lm_head)",
    QA_SIMPLE: "SQuAD span head (qa_outputs)",
    QA_JOINT: "SQuAD joint span head (qa_joint)",
}
_HEADS = {
    "discriminator_predictions.": RTD_HEAD,
    "generator_predictions.": MLM_HEAD,
    "generator_lm_head.": MLM_HEAD,
    "qa_outputs.": QA_SIMPLE,
    "qa_joint.": QA_JOINT,
}


@dataclass(frozen=True)
class Slot:
    names: tuple[str, ...]  # canonical names, concatenated along the last (Keras) axis
    variable: keras.Variable
    group: str
    transposed: bool  # canonical [out, in] vs Keras [in, out]


def group_of(name: str) -> str:
    for prefix, group in _HEADS.items():
        if name.startswith(prefix):
            return group
    if name.startswith("generator:"):
        return GENERATOR
    if name.startswith("discriminator:"):
        return DISCRIMINATOR
    return EMBEDDINGS


def _dense(prefix: str, layer, group: str) -> list[Slot]:
    return [
        Slot((f"{prefix}.weight",), layer.kernel, group, True),
        Slot((f"{prefix}.bias",), layer.bias, group, False),
    ]


def _norm(prefix: str, layer, group: str) -> list[Slot]:
    return [
        Slot((f"{prefix}.weight",), layer.gamma, group, False),
        Slot((f"{prefix}.bias",), layer.beta, group, False),
    ]


def embedding_slots(embeddings) -> list[Slot]:
    return [
        Slot(("embeddings.word_embeddings.weight",), embeddings.word_embeddings.embeddings,
             EMBEDDINGS, False),
        Slot(("embeddings.position_embeddings.weight",), embeddings.position_embeddings,
             EMBEDDINGS, False),
        Slot(("embeddings.token_type_embeddings.weight",),
             embeddings.token_type_embeddings.embeddings, EMBEDDINGS, False),
        *_norm("embeddings.LayerNorm", embeddings.norm, EMBEDDINGS),
    ]  # fmt: skip


def encoder_slots(backbone, part: str) -> list[Slot]:
    """The projection and blocks of an `ElectraBackbone` used as `part`."""
    slots = []
    if backbone.projection is not None:
        slots += _dense(f"{part}:embeddings_project", backbone.projection, part)
    for i, block in enumerate(backbone.blocks):
        p = f"{part}:encoder.layer.{i}"
        qkv = [f"{p}.attention.self.{x}" for x in ("query", "key", "value")]
        slots += [
            Slot(tuple(f"{n}.weight" for n in qkv), block.attention.qkv.kernel, part, True),
            Slot(tuple(f"{n}.bias" for n in qkv), block.attention.qkv.bias, part, False),
            *_dense(f"{p}.attention.output.dense", block.attention.output_dense, part),
            *_norm(f"{p}.attention.output.LayerNorm", block.attention_norm, part),
            *_dense(f"{p}.intermediate.dense", block.intermediate, part),
            *_dense(f"{p}.output.dense", block.output_dense, part),
            *_norm(f"{p}.output.LayerNorm", block.output_norm, part),
        ]
    return slots


def model_slots(model) -> list[Slot]:
    """Slots of an `ElectraBackbone`, `ElectraPretrainer`, `ElectraQuestionAnswerer` or a
    `BertQuestionAnswerer` over an `ElectraBackbone` (the simple SQuAD head)."""
    disc = getattr(model, "discriminator", None) or getattr(model, "backbone", model)
    slots = embedding_slots(disc.embeddings) + encoder_slots(disc, DISCRIMINATOR)
    if hasattr(model, "generator"):
        head = model.generator_head
        slots += encoder_slots(model.generator, GENERATOR)
        slots += [
            *_dense("discriminator_predictions.dense", model.discriminator_head.dense, RTD_HEAD),
            *_dense("discriminator_predictions.dense_prediction",
                    model.discriminator_head.prediction, RTD_HEAD),
            *_dense("generator_predictions.dense", head.transform, MLM_HEAD),
            *_norm("generator_predictions.LayerNorm", head.norm, MLM_HEAD),
            Slot(("generator_lm_head.bias",), head.output_bias, MLM_HEAD, False),
        ]  # fmt: skip
    if hasattr(model, "span_head"):
        slots += _dense("qa_outputs", model.span_head, QA_SIMPLE)
    if hasattr(model, "qa_head"):
        head = model.qa_head
        for name in ("start", "end_hidden", "end", "answer_hidden", "answerable"):
            slots += _dense(f"qa_joint.{name}", getattr(head, name), QA_JOINT)
    return slots


def export_weights(model, groups: set[str] | None = None) -> dict[str, np.ndarray]:
    """Canonical name -> float32 array (HF layout) for every weight of `model` (of `groups`)."""
    weights = {}
    for slot in model_slots(model):
        if groups is not None and slot.group not in groups:
            continue
        value = keras.ops.convert_to_numpy(slot.variable)
        parts = np.split(value, len(slot.names), axis=-1) if len(slot.names) > 1 else [value]
        for name, part in zip(slot.names, parts, strict=True):
            weights[name] = np.ascontiguousarray(part.T if slot.transposed else part)
    return weights


def _listing(label: str, items: list[str], limit: int = 6) -> str:
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return f"{label} ({len(items)}): {', '.join(items[:limit])}{more}"


def assign_weights(model, weights: dict[str, np.ndarray], source: str, display=str) -> list[str]:
    """Copy canonical `weights` into `model`; return warnings; one UserError on any mismatch.

    The embeddings and the discriminator encoder must be complete. Any other group that the
    source lacks ENTIRELY keeps its initialisation (a warning); one it has and the model lacks
    is ignored (a warning); one present in part is an error.
    """
    slots = model_slots(model)
    known = {name for slot in slots for name in slot.names}
    present: dict[str, bool] = {}
    for slot in slots:
        present[slot.group] = present.get(slot.group, False) or any(
            name in weights for name in slot.names
        )
    absent = {g for g, found in present.items() if not found and g not in REQUIRED}
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
            mismatched.append(f"{names} {list(value.shape)} vs model {list(slot.variable.shape)}")
        values.append((slot.variable, value))
    unused = sorted(set(weights) - known)
    unexpected = [display(n) for n in unused if group_of(n) in present]
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
            hint="build the model from the checkpoint's own config",
        )
    for variable, value in values:
        variable.assign(value.astype(variable.dtype))
    warnings = [
        f"{source} has no {GROUP_TITLES[g]}: it keeps its random initialisation"
        for g in sorted(absent)
    ]
    ignored = sorted({group_of(n) for n in unused} - set(present))
    warnings += [f"{source}: ignored its {GROUP_TITLES[g]}" for g in ignored]
    return warnings
