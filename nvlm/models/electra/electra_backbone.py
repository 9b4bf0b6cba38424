"""The ELECTRA encoder (discriminator or generator): shared embeddings, a projection to the
hidden size when the widths differ, and a stack of Transformer blocks."""

from __future__ import annotations

import keras

from nvlm.layers import Embeddings
from nvlm.models.encoder.backbone import (
    EncoderBackbone,
    backbone_inputs,
    encoder_blocks,
    encoder_embeddings,
    run_blocks,
)


@keras.saving.register_keras_serializable(package="nvlm")
class ElectraBackbone(EncoderBackbone):
    """An ELECTRA encoder (Clark et al. 2020) without heads.

    The blocks are BERT's (`nvlm.layers.TransformerEncoderBlock`, post-LN, exact GELU); what
    differs is the embedding: its tables are `embedding_size` wide, and when that is not the
    hidden size a dense `embeddings_project` maps the normalised embedding to it (ELECTRA-Small:
    128 -> 256; the generator of every size: e.g. 768 -> 256 at base). The generator and the
    discriminator of one pretraining model SHARE the `Embeddings` layer (word, position and
    segment tables and their LayerNorm, section 3.2 of the paper): pass the discriminator's as
    `embeddings` when building the generator. Each keeps its own projection.

    There is no pooler: ELECTRA's heads read the token states (its classifier reads [CLS]).

    Inputs and outputs are `BertBackbone`'s (`input_ids`, `input_mask`, `segment_ids` ->
    `sequence_output` `[batch, seq, hidden]` and `hidden_states`, the projected embedding
    output then each block's output), so the heads written for BERT apply.

    Args:
        vocab_size: rows of the word embedding.
        hidden_size, num_layers, num_heads, intermediate_size: the encoder.
        embedding_size: width of the embedding tables (None: the hidden size).
        max_position, type_vocab_size: position and segment table rows.
        dropout, attention_dropout: dropout rates.
        initializer_range, layer_norm_eps: as BERT.
        embeddings: an `Embeddings` layer to share (its width must be `embedding_size`).
        dtype: optional dtype policy; default the global policy.
        **kwargs: standard `keras.Model` arguments (`name`).

    Example:
    >>> from nvlm.models.electra.config import ElectraConfig
    >>> cfg = ElectraConfig(size="tiny", vocab_size=128, hidden_size=64, num_layers=2,
    ...                     num_heads=2, intermediate_size=256, embedding_size=32)
    >>> backbone = ElectraBackbone(**cfg.backbone_kwargs())
    >>> ids = keras.ops.ones((2, 16), dtype="int32")
    >>> out = backbone({"input_ids": ids, "input_mask": ids, "segment_ids": 0 * ids})
    >>> tuple(out["sequence_output"].shape)
    (2, 16, 64)
    """

    shared_arguments = ("embeddings",)

    def __init__(
        self,
        vocab_size: int,
        hidden_size: int = 768,
        num_layers: int = 12,
        num_heads: int = 12,
        intermediate_size: int = 3072,
        embedding_size: int | None = None,
        max_position: int = 512,
        type_vocab_size: int = 2,
        dropout: float = 0.1,
        attention_dropout: float = 0.1,
        initializer_range: float = 0.02,
        layer_norm_eps: float = 1e-12,
        embeddings: Embeddings | None = None,
        dtype=None,
        **kwargs,
    ) -> None:
        embedding_size = embedding_size or hidden_size
        config = self.config_of(locals())
        init = keras.initializers.TruncatedNormal(stddev=initializer_range)
        # === Layers ===
        if embeddings is None:
            # width embedding_size: the projection is this model's own layer below, so that a
            # generator can share the tables and still project to its own width.
            embeddings = encoder_embeddings(config, embedding_size, dtype)
        elif embeddings.hidden_size != embedding_size or embeddings.vocab_size != vocab_size:
            raise ValueError(
                f"shared embeddings are {embeddings.vocab_size} x {embeddings.hidden_size}, "
                f"this encoder needs {vocab_size} x {embedding_size}"
            )
        projection = None
        if embedding_size != hidden_size:
            projection = keras.layers.Dense(
                hidden_size, kernel_initializer=init, dtype=dtype, name="embeddings_project"
            )
        blocks = encoder_blocks(config, dtype)

        # === Functional graph ===
        inputs = backbone_inputs()
        x = embeddings(inputs["input_ids"], inputs["segment_ids"])
        if projection is not None:
            x = projection(x)
        x, hidden_states = run_blocks(x, blocks, inputs["input_mask"])
        outputs = {"sequence_output": x, "hidden_states": hidden_states}
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # === Config ===
        self._mirror_config(config)
        self.embeddings = embeddings
        self.projection = projection
        self.blocks = blocks

    def embed(self, inputs: dict):
        """The embeddings, projected to the hidden size when they are narrower."""
        x = super().embed(inputs)
        return x if self.projection is None else self.projection(x)
