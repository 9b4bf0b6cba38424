"""BERT with its two pretraining heads: masked-LM and next-sentence prediction."""

from __future__ import annotations

import keras
from keras import ops

from nvlm.layers import MaskedLMHead
from nvlm.models.bert.bert_backbone import BACKBONE_INPUTS, BertBackbone, select_inputs
from nvlm.models.encoder.backbone import run_blocks

PRETRAINER_INPUTS = (*BACKBONE_INPUTS, "masked_lm_positions")


def last_layer_at_heads(backbone: BertBackbone, inputs: dict) -> tuple:
    """The backbone's forward pass with its last block computed only where the heads read.

    The masked-LM head reads the last layer at the masked positions and the pooler at [CLS]
    (position 0); every other position's last-layer output is discarded. So the last block
    takes queries only at `[0, *masked_lm_positions]` (attending over the whole sequence), and
    its feed-forward network, attention output and query projection run on 1 + P rows instead
    of seq: at BERT-base, seq 128 and 20 predictions, 83% of the last block's query-side work,
    about 5% of a training step's FLOPs. The results are those of the full pass (see
    `tests/test_bert_model.py`); only the dropout masks of the last block are drawn over fewer
    values.

    Returns (`[batch, 1 + P, hidden]` last-layer rows, `[batch, P]` the masked positions'
    rows in them, i.e. 1..P).
    """
    x = backbone.embed(inputs)
    x, _ = run_blocks(x, backbone.blocks[:-1], inputs["input_mask"], unpad=True)
    positions = ops.cast(inputs["masked_lm_positions"], "int32")
    rows = ops.pad(positions, [[0, 0], [1, 0]])  # [CLS] first
    picked = backbone.blocks[-1](x, attention_mask=inputs["input_mask"], query_positions=rows)
    return picked, ops.cumsum(ops.ones_like(positions), axis=1)


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
        picked, read_at = last_layer_at_heads(backbone, inputs)
        pooled = backbone.pooler(picked[:, 0, :])
        outputs = {
            "mlm_logits": mlm_head(picked, read_at),
            "nsp_logits": ops.cast(nsp_head(pooled), "float32"),
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
