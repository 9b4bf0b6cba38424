"""BERT with its two pretraining heads: masked-LM and next-sentence prediction."""

from __future__ import annotations

import keras
from keras import ops

from nvlm.layers import MaskedLMHead
from nvlm.models.bert.bert_backbone import BACKBONE_INPUTS, BertBackbone, select_inputs

PRETRAINER_INPUTS = (*BACKBONE_INPUTS, "masked_lm_positions")


@keras.saving.register_keras_serializable(package="nvlm")
class BertPretrainer(keras.Model):
    """A `BertBackbone` with the masked-LM and next-sentence heads of BERT pretraining.

    Inputs: the backbone's (`input_ids`, `input_mask`, `segment_ids`) plus
    `masked_lm_positions` `[batch, max_predictions]` (int32; unused slots are 0, as in the
    pretraining shards).

    Outputs (float32 whatever the policy, so that the losses are computed in float32):
        `mlm_logits`: `[batch, max_predictions, vocab_size]`, only at the masked positions
            (see `MaskedLMHead`), the decoder tied to the word embedding.
        `nsp_logits`: `[batch, 2]` from the pooled [CLS] output (0 = "B follows A",
            1 = "B is random", the label convention of Google's data).

    `nvlm.models.bert.pretraining_losses(outputs, batch)` turns these into losses and
    accuracies.

    Args:
        backbone: the `BertBackbone` to train.
        **kwargs: standard `keras.Model` arguments (`name`).

    Example:
    >>> from nvlm.models.bert.config import BertConfig
    >>> backbone = BertBackbone(**BertConfig.from_size("tiny", vocab_size=128).to_backbone_kwargs())
    >>> pretrainer = BertPretrainer(backbone)
    >>> ids = keras.ops.ones((2, 16), dtype="int32")
    >>> out = pretrainer({"input_ids": ids, "input_mask": ids, "segment_ids": 0 * ids,
    ...                   "masked_lm_positions": keras.ops.ones((2, 3), dtype="int32")})
    >>> tuple(out["mlm_logits"].shape), tuple(out["nsp_logits"].shape)
    ((2, 3, 128), (2, 2))
    """

    def __init__(self, backbone: BertBackbone, **kwargs) -> None:
        # === Layers ===
        mlm_head = MaskedLMHead(
            backbone.vocab_size,
            backbone.hidden_size,
            token_embedding=backbone.token_embedding,
            layer_norm_eps=backbone.layer_norm_eps,
            initializer_range=backbone.initializer_range,
            dtype=backbone.dtype_policy,
            name="mlm_head",
        )
        nsp_head = keras.layers.Dense(
            2,
            kernel_initializer=keras.initializers.TruncatedNormal(
                stddev=backbone.initializer_range
            ),
            dtype=backbone.dtype_policy,
            name="nsp_head",
        )

        # === Functional graph ===
        inputs = {
            name: keras.Input(shape=(None,), dtype="int32", name=name) for name in PRETRAINER_INPUTS
        }
        encoded = backbone(inputs)
        outputs = {
            "mlm_logits": mlm_head(encoded["sequence_output"], inputs["masked_lm_positions"]),
            "nsp_logits": ops.cast(nsp_head(encoded["pooled_output"]), "float32"),
        }
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        self.backbone = backbone
        self.mlm_head = mlm_head
        self.nsp_head = nsp_head

    def __call__(self, inputs, *args, **kwargs):
        return super().__call__(select_inputs(inputs, PRETRAINER_INPUTS), *args, **kwargs)

    def get_config(self) -> dict:
        return {
            "name": self.name,
            "trainable": self.trainable,
            "backbone": keras.layers.serialize(self.backbone),
        }

    @classmethod
    def from_config(cls, config: dict) -> BertPretrainer:
        config = dict(config)
        config["backbone"] = keras.layers.deserialize(config["backbone"])
        return cls(**config)
