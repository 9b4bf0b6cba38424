"""ELECTRA's discriminator with the joint span head, for SQuAD."""

from __future__ import annotations

import keras
import tensorflow as tf

from nvlm.models.electra.electra_backbone import ElectraBackbone
from nvlm.models.electra.joint_span_head import JointSpanHead
from nvlm.models.encoder.backbone import BACKBONE_INPUTS


def answer_positions(input_mask, segment_ids):
    """1.0 where a span may start or end: the context tokens of `[CLS] query [SEP] context
    [SEP]` (segment 1, without the final [SEP]) and [CLS] itself (the "no answer" target)."""
    mask = tf.cast(input_mask, tf.int32)
    seq_len = tf.shape(mask)[1]
    last = tf.reduce_sum(mask, axis=1, keepdims=True) - 1  # the final [SEP]
    index = tf.range(seq_len)[None, :]
    context = (tf.cast(segment_ids, tf.int32) == 1) & (mask == 1) & (index != last)
    return tf.cast(context | (index == 0), tf.float32)


class ElectraQuestionAnswerer(keras.Model):
    """An ELECTRA discriminator with `JointSpanHead`.

    Called with the backbone inputs it returns the beam (see `JointSpanHead.predict_spans`);
    `train_logits(batch, training)` returns the teacher-forced logits the loss needs (the
    batch carries `start_positions`). `nvlm.plugins.electra.joint_squad.JointSquad` holds the
    loss and the decoding into answers.

    Args:
        backbone: the discriminator `ElectraBackbone`.
        head_size: width of the head's hidden layers.
        beam_size: beam of the inference path.
        **kwargs: standard `keras.Model` arguments.
    """

    def __init__(
        self, backbone: ElectraBackbone, head_size: int = 512, beam_size: int = 4, **kwargs
    ) -> None:
        super().__init__(**kwargs)
        self.backbone = backbone
        self.qa_head = JointSpanHead(
            head_size,
            beam_size=beam_size,
            initializer_range=backbone.initializer_range,
            dtype=backbone.dtype_policy,
            name="joint_span_head",
        )
        self.qa_head.build((None, None, backbone.hidden_size))
        self.built = True

    def _encode(self, inputs, training):
        inputs = {k: inputs[k] for k in BACKBONE_INPUTS}
        sequence = self.backbone(inputs, training=training)["sequence_output"]
        return sequence, answer_positions(inputs["input_mask"], inputs["segment_ids"])

    def call(self, inputs, training=None):
        sequence, allowed = self._encode(inputs, training)
        return self.qa_head.predict_spans(sequence, allowed)

    def train_logits(self, batch, training=None):
        sequence, allowed = self._encode(batch, training)
        return self.qa_head.train_logits(sequence, allowed, batch["start_positions"])
