"""The one table between nvlm's ELECTRA variables and checkpoint weight names.

Canonical names are Hugging Face's, without the `electra.` prefix, with the encoder's part
in front: `embeddings.word_embeddings.weight` (shared by generator and discriminator),
`discriminator:encoder.layer.3.attention.self.query.weight`, `generator:embeddings_project.
bias`, and the heads under their HF names (`discriminator_predictions.*`,
`generator_predictions.*`, `generator_lm_head.bias`, `qa_outputs.*`, the classification head's
`classifier.dense.*` and `classifier.out_proj.*`). The joint SQuAD head has
no Hugging Face counterpart and is named `qa_joint.*` (nvlm's own). Canonical VALUES are in
Hugging Face (PyTorch) layouts: a linear weight is `[out, in]`, transposed into Keras's
`[in, out]` kernel. nvlm's fused QKV kernel is the concatenation of the three.
See docs/electra.md for the table.
"""

from __future__ import annotations

import numpy as np

from nvlm.convert.weight_slots import Slot, assign_slots, export_slots

# Weight groups: the embeddings and the discriminator encoder are required by every model;
# the rest may be absent from a checkpoint (and are then left as initialised, with a warning).
EMBEDDINGS, DISCRIMINATOR, GENERATOR = "embeddings", "discriminator", "generator"
RTD_HEAD, MLM_HEAD, QA_SIMPLE, QA_JOINT = "rtd_head", "mlm_head", "qa_simple", "qa_joint"
CLASSIFY = "classify"
REQUIRED = (EMBEDDINGS, DISCRIMINATOR)
GROUP_TITLES = {
    GENERATOR: "generator encoder",
    RTD_HEAD: "discriminator head (discriminator_predictions)",
    MLM_HEAD: "generator head (generator_predictions, generator_lm_head)",
    QA_SIMPLE: "SQuAD span head (qa_outputs)",
    QA_JOINT: "SQuAD joint span head (qa_joint)",
    CLASSIFY: "classification head (classifier)",
}
_HEADS = {
    "discriminator_predictions.": RTD_HEAD,
    "generator_predictions.": MLM_HEAD,
    "generator_lm_head.": MLM_HEAD,
    "qa_outputs.": QA_SIMPLE,
    "qa_joint.": QA_JOINT,
    "classifier.": CLASSIFY,
}


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
    """Slots of an `ElectraBackbone`, `ElectraPretrainer`, `ElectraQuestionAnswerer`,
    `ElectraClassifier` or a `BertQuestionAnswerer` over an `ElectraBackbone` (the simple
    SQuAD head)."""
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
    if hasattr(model, "classifier_out"):
        slots += _dense("classifier.dense", model.classifier_dense, CLASSIFY)
        slots += _dense("classifier.out_proj", model.classifier_out, CLASSIFY)
    return slots


def export_weights(model, groups: set[str] | None = None) -> dict[str, np.ndarray]:
    """Canonical name -> float32 array (HF layout) for every weight of `model` (of `groups`)."""
    slots = model_slots(model)
    return export_slots([s for s in slots if groups is None or s.group in groups])


def assign_weights(model, weights: dict[str, np.ndarray], source: str, display=str) -> list[str]:
    """Copy canonical `weights` into `model`; return warnings; one UserError on any mismatch.

    The embeddings and the discriminator encoder must be complete. Any other group that the
    source lacks ENTIRELY keeps its initialisation (a warning); one it has and the model lacks
    is ignored (a warning); one present in part is an error.
    """
    return assign_slots(
        model_slots(model),
        weights,
        source,
        group_of=group_of,
        titles=GROUP_TITLES,
        required=REQUIRED,
        strict=None,
        hint="build the model from the checkpoint's own config",
        display=display,
    )
