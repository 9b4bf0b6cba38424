"""The one table between nvlm's BERT variables and checkpoint weight names.

Every importer translates its format into CANONICAL names and layouts; every exporter
translates from them. Canonical names are Google's TF1 BERT names without the `bert/` scope
(`encoder/layer_3/attention/self/query/kernel`), and canonical layouts are Keras's: a dense
kernel is `[in, out]`, an embedding table `[rows, width]`. The two heads whose Google weights
are stored transposed (`cls/seq_relationship/output_weights`, `cls/squad/output_weights`,
both `[2, hidden]`) are canonically `.../kernel` `[hidden, 2]`. The classification head, which
Google's run_classifier.py names `output_weights` `[num_labels, hidden]` / `output_bias` at the
top level, is canonically `cls/classifier/kernel` `[hidden, num_labels]` / `.../bias`.

nvlm fuses the query, key and value kernels into one `[hidden, 3 * hidden]` variable; its slot
lists the three canonical names (nvlm.convert.weight_slots).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from nvlm.convert.weight_slots import Slot, assign_slots, export_slots

# Weight groups. Only the encoder is required; the others may be absent from a checkpoint
# (an HF BertModel has no heads, a BertForMaskedLM no pooler) and are then left as initialised.
ENCODER, POOLER, MLM, NSP, SQUAD = "encoder", "pooler", "mlm", "nsp", "squad"
CLASSIFY = "classify"
GROUP_TITLES = {
    POOLER: "pooler",
    MLM: "masked-LM head (cls/predictions)",
    NSP: "next-sentence head (cls/seq_relationship)",
    SQUAD: "span head (cls/squad, qa_outputs)",
    CLASSIFY: "classification head (classifier, output_weights)",
}
HEAD_PREFIXES = {
    "cls/predictions/": MLM,
    "cls/seq_relationship/": NSP,
    "cls/squad/": SQUAD,
    "cls/classifier/": CLASSIFY,
}


def group_of(name: str) -> str:
    """The weight group of a canonical name."""
    if name.startswith("pooler/"):
        return POOLER
    return next((g for prefix, g in HEAD_PREFIXES.items() if name.startswith(prefix)), ENCODER)


def _dense(prefix: str, layer, group: str) -> list[Slot]:
    return [
        Slot((f"{prefix}/kernel",), layer.kernel, group),
        Slot((f"{prefix}/bias",), layer.bias, group),
    ]


def _norm(prefix: str, layer, group: str) -> list[Slot]:
    return [
        Slot((f"{prefix}/gamma",), layer.gamma, group),
        Slot((f"{prefix}/beta",), layer.beta, group),
    ]


def _backbone_slots(backbone) -> list[Slot]:
    emb = backbone.embeddings
    slots = [
        Slot(("embeddings/word_embeddings",), emb.word_embeddings.embeddings, ENCODER),
        Slot(("embeddings/position_embeddings",), emb.position_embeddings, ENCODER),
        Slot(("embeddings/token_type_embeddings",), emb.token_type_embeddings.embeddings, ENCODER),
        *_norm("embeddings/LayerNorm", emb.norm, ENCODER),
    ]
    for i, block in enumerate(backbone.blocks):
        p = f"encoder/layer_{i}"
        qkv = [f"{p}/attention/self/{part}" for part in ("query", "key", "value")]
        slots += [
            Slot(tuple(f"{n}/kernel" for n in qkv), block.attention.qkv.kernel, ENCODER),
            Slot(tuple(f"{n}/bias" for n in qkv), block.attention.qkv.bias, ENCODER),
            *_dense(f"{p}/attention/output/dense", block.attention.output_dense, ENCODER),
            *_norm(f"{p}/attention/output/LayerNorm", block.attention_norm, ENCODER),
            *_dense(f"{p}/intermediate/dense", block.intermediate, ENCODER),
            *_dense(f"{p}/output/dense", block.output_dense, ENCODER),
            *_norm(f"{p}/output/LayerNorm", block.output_norm, ENCODER),
        ]
    return slots + _dense("pooler/dense", backbone.pooler, POOLER)


def model_slots(model) -> list[Slot]:
    """Slots of a `BertBackbone`, `BertPretrainer`, `BertQuestionAnswerer` or
    `BertClassifier`."""
    backbone = getattr(model, "backbone", model)
    slots = _backbone_slots(backbone)
    if hasattr(model, "mlm_head"):
        head = model.mlm_head
        slots += [
            *_dense("cls/predictions/transform/dense", head.transform, MLM),
            *_norm("cls/predictions/transform/LayerNorm", head.norm, MLM),
            Slot(("cls/predictions/output_bias",), head.output_bias, MLM),
            *_dense("cls/seq_relationship", model.nsp_head, NSP),
        ]
    if hasattr(model, "span_head"):
        slots += _dense("cls/squad", model.span_head, SQUAD)
    if hasattr(model, "classifier"):
        slots += _dense("cls/classifier", model.classifier, CLASSIFY)
    return slots


def model_groups(model) -> set[str]:
    return {slot.group for slot in model_slots(model)}


def export_weights(model) -> dict[str, np.ndarray]:
    """Canonical name -> float32 array for every weight of `model` (fused QKV split)."""
    return export_slots(model_slots(model))


def assign_weights(
    model,
    weights: dict[str, np.ndarray],
    source: str,
    display: Callable[[str], str] = str,
) -> list[str]:
    """Copy canonical `weights` into `model`; return warnings, raise one UserError on mismatch.

    The error lists every weight the checkpoint lacks, every encoder weight nvlm does not
    know, and every shape mismatch. A pooler or head that the checkpoint lacks ENTIRELY, or
    that it has and `model` does not, is only a warning: that is how the checkpoints of
    different tasks legitimately differ (an HF `BertModel` has no heads, a `BertForMaskedLM` no
    pooler, a SQuAD checkpoint no pretraining heads). `display` names a canonical weight the
    way the checkpoint's format does, for the error message.
    """
    return assign_slots(
        model_slots(model),
        weights,
        source,
        group_of=group_of,
        titles=GROUP_TITLES,
        required={ENCODER},
        strict={ENCODER},
        hint="build the model from the checkpoint's own config (nvlm.convert.read_checkpoint)",
        display=display,
        part_shapes=True,
    )
