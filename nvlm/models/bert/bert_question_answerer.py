"""BERT with a span head for extractive question answering (SQuAD)."""

from __future__ import annotations

import keras
from keras import ops

from nvlm.models.bert.bert_backbone import BACKBONE_INPUTS, BertBackbone, select_inputs
from nvlm.models.encoder.backbone import run_blocks


@keras.saving.register_keras_serializable(package="nvlm")
class BertQuestionAnswerer(keras.Model):
    """A `BertBackbone` with a span head: one dense layer with 2 outputs per token.

    This is the SQuAD model of Devlin et al. 2018 (section 4.2): a start vector and an end
    vector dotted with every token's final hidden state. Padding positions are not computed
    (see `TransformerEncoderBlock(unpad=True)`); answer extraction only looks at context tokens.

    Inputs: the backbone's (`input_ids`, `input_mask`, `segment_ids`).

    Outputs (float32): `start_logits` and `end_logits`, each `[batch, seq]`.

    Checkpoint names: Google's `cls/squad/output_weights` / `output_bias`, Hugging Face's
    `qa_outputs.weight` / `.bias` (row 0 = start, row 1 = end in both).

    Args:
        backbone: the `BertBackbone` to fine-tune.
        **kwargs: standard `keras.Model` arguments (`name`).

    Example:
    >>> from nvlm.models.bert.config import BertConfig
    >>> backbone = BertBackbone(**BertConfig.from_size("tiny", vocab_size=128).to_backbone_kwargs())
    >>> qa = BertQuestionAnswerer(backbone)
    >>> ids = keras.ops.ones((2, 16), dtype="int32")
    >>> out = qa({"input_ids": ids, "input_mask": ids, "segment_ids": 0 * ids})
    >>> tuple(out["start_logits"].shape), tuple(out["end_logits"].shape)
    ((2, 16), (2, 16))
    """

    def __init__(self, backbone: BertBackbone, **kwargs) -> None:
        span_head = keras.layers.Dense(
            2,
            kernel_initializer=keras.initializers.TruncatedNormal(
                stddev=backbone.initializer_range
            ),
            dtype=backbone.dtype_policy,
            name="span_head",
        )
        inputs = {
            name: keras.Input(shape=(None,), dtype="int32", name=name) for name in BACKBONE_INPUTS
        }
        # The backbone's blocks on the real tokens only: the per-token layers skip padding,
        # most of a 384-token SQuAD feature when its context is short (padding positions get
        # the head's bias, or values from a rounded-up row count; decoding never reads them).
        x = backbone.embed(inputs)
        x, _ = run_blocks(x, backbone.blocks, inputs["input_mask"], unpad=True)
        logits = ops.cast(span_head(x), "float32")
        outputs = {"start_logits": logits[:, :, 0], "end_logits": logits[:, :, 1]}
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        self.backbone = backbone
        self.span_head = span_head
        # Checkpoints store `model.variables` by index; keep the order of a model that calls
        # `backbone(inputs)` (the backbone's, pooler included, then the head's), which the
        # graph above, reaching the backbone's layers one by one, would change.
        self._layers.remove(backbone)
        self._layers.insert(0, backbone)

    def __call__(self, inputs, *args, **kwargs):
        return super().__call__(select_inputs(inputs, BACKBONE_INPUTS), *args, **kwargs)

    def get_config(self) -> dict:
        return {
            "name": self.name,
            "trainable": self.trainable,
            "backbone": keras.layers.serialize(self.backbone),
        }

    @classmethod
    def from_config(cls, config: dict) -> BertQuestionAnswerer:
        config = dict(config)
        config["backbone"] = keras.layers.deserialize(config["backbone"])
        return cls(**config)
