"""The BERT encoder: embeddings, a stack of Transformer blocks and the [CLS] pooler."""

from __future__ import annotations

import keras

from nvlm.models.encoder.backbone import (
    BACKBONE_INPUTS,
    EncoderBackbone,
    backbone_inputs,
    encoder_blocks,
    encoder_embeddings,
    run_blocks,
    select_inputs,
)

# BACKBONE_INPUTS and select_inputs were defined here first; code importing them from here works.
__all__ = ["BACKBONE_INPUTS", "BertBackbone", "select_inputs"]


@keras.saving.register_keras_serializable(package="nvlm")
class BertBackbone(EncoderBackbone):
    """BERT (Devlin et al. 2018) without heads.

    Inputs (a dict of int32 tensors `[batch, seq]`): `input_ids`; `input_mask` (1 = token,
    0 = padding); `segment_ids` (0 for sentence A, 1 for sentence B). These are the dataset
    names of Google's and NVIDIA's pretraining shards. Other keys (labels) are ignored, so a
    whole batch can be passed.

    Outputs (a dict):
        `sequence_output`: `[batch, seq, hidden]`, the last block's output.
        `pooled_output`: `[batch, hidden]`, `tanh(W h[CLS] + b)`, the input of sentence-level
            heads (next-sentence prediction, classification).
        `hidden_states`: list of `num_layers + 1` tensors `[batch, seq, hidden]`: the embedding
            output, then each block's output (`hidden_states[K]` is layer K, for feature
            extraction with `--layer K`). They are intermediate values of the forward pass, so
            returning them costs nothing.

    Tensors are in the compute dtype of the policy (`dtype`, or the global policy).

    Args:
        vocab_size: rows of the word embedding.
        hidden_size: model width.
        num_layers: number of encoder blocks.
        num_heads: attention heads per block.
        intermediate_size: feed-forward width.
        max_position: longest sequence.
        type_vocab_size: number of segment ids.
        dropout: dropout on embeddings and block outputs.
        attention_dropout: dropout on attention probabilities.
        initializer_range: standard deviation of the truncated normal initialiser.
        layer_norm_eps: LayerNorm epsilon.
        dtype: optional dtype policy (e.g. "mixed_bfloat16"); default: the global policy.
        **kwargs: standard `keras.Model` arguments (`name`).

    Example:
    >>> from nvlm.models.bert.config import BertConfig
    >>> cfg = BertConfig.from_size("tiny", vocab_size=128)
    >>> backbone = BertBackbone(**cfg.to_backbone_kwargs())
    >>> ids = keras.ops.ones((2, 16), dtype="int32")
    >>> out = backbone({"input_ids": ids, "input_mask": ids, "segment_ids": 0 * ids})
    >>> tuple(out["sequence_output"].shape), tuple(out["pooled_output"].shape)
    ((2, 16, 64), (2, 64))
    """

    def __init__(
        self,
        vocab_size: int,
        hidden_size: int = 768,
        num_layers: int = 12,
        num_heads: int = 12,
        intermediate_size: int = 3072,
        max_position: int = 512,
        type_vocab_size: int = 2,
        dropout: float = 0.1,
        attention_dropout: float = 0.1,
        initializer_range: float = 0.02,
        layer_norm_eps: float = 1e-12,
        dtype=None,
        **kwargs,
    ) -> None:
        config = self.config_of(locals())
        # === Layers ===
        embeddings = encoder_embeddings(config, hidden_size, dtype)
        blocks = encoder_blocks(config, dtype)
        pooler = keras.layers.Dense(
            hidden_size,
            activation="tanh",
            kernel_initializer=keras.initializers.TruncatedNormal(stddev=initializer_range),
            dtype=dtype,
            name="pooler",
        )

        # === Functional graph ===
        inputs = backbone_inputs()
        x = embeddings(inputs["input_ids"], inputs["segment_ids"])
        x, hidden_states = run_blocks(x, blocks, inputs["input_mask"])
        outputs = {
            "sequence_output": x,
            "pooled_output": pooler(x[:, 0, :]),
            "hidden_states": hidden_states,
        }
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # === Config ===
        self._mirror_config(config)
        self.embeddings = embeddings
        self.blocks = blocks
        self.pooler = pooler
