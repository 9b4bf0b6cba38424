"""The ELECTRA encoder (discriminator or generator): shared embeddings, a projection to the
hidden size when the widths differ, and a stack of Transformer blocks."""

from __future__ import annotations

import keras

from nvlm.layers import Embeddings, TransformerEncoderBlock
from nvlm.models.bert.bert_backbone import BACKBONE_INPUTS, select_inputs


@keras.saving.register_keras_serializable(package="nvlm")
class ElectraBackbone(keras.Model):
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
        init = keras.initializers.TruncatedNormal(stddev=initializer_range)
        # === Layers ===
        if embeddings is None:
            # hidden_size=embedding_size: the projection is this model's own layer below, so
            # that a generator can share the tables and still project to its own width.
            embeddings = Embeddings(
                vocab_size,
                embedding_size,
                max_position=max_position,
                type_vocab_size=type_vocab_size,
                dropout=dropout,
                layer_norm_eps=layer_norm_eps,
                initializer_range=initializer_range,
                dtype=dtype,
                name="embeddings",
            )
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
        blocks = [
            TransformerEncoderBlock(
                hidden_size,
                num_heads,
                intermediate_size,
                dropout=dropout,
                attention_dropout=attention_dropout,
                layer_norm_eps=layer_norm_eps,
                initializer_range=initializer_range,
                dtype=dtype,
                name=f"layer_{i}",
            )
            for i in range(num_layers)
        ]

        # === Functional graph ===
        inputs = {
            name: keras.Input(shape=(None,), dtype="int32", name=name) for name in BACKBONE_INPUTS
        }
        x = embeddings(inputs["input_ids"], inputs["segment_ids"])
        if projection is not None:
            x = projection(x)
        hidden_states = [x]
        for block in blocks:
            x = block(x, attention_mask=inputs["input_mask"])
            hidden_states.append(x)
        outputs = {"sequence_output": x, "hidden_states": hidden_states}
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # === Config ===
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.intermediate_size = intermediate_size
        self.embedding_size = embedding_size
        self.max_position = max_position
        self.type_vocab_size = type_vocab_size
        self.dropout = dropout
        self.attention_dropout = attention_dropout
        self.initializer_range = initializer_range
        self.layer_norm_eps = layer_norm_eps
        self.embeddings = embeddings
        self.projection = projection
        self.blocks = blocks

    def __call__(self, inputs, *args, **kwargs):
        return super().__call__(select_inputs(inputs, BACKBONE_INPUTS), *args, **kwargs)

    @property
    def token_embedding(self) -> keras.layers.Embedding:
        """The word embedding layer (the matrix the generator's masked-LM head ties to)."""
        return self.embeddings.word_embeddings

    def get_config(self) -> dict:
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.dtype_policies.serialize(self.dtype_policy),
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "intermediate_size": self.intermediate_size,
            "embedding_size": self.embedding_size,
            "max_position": self.max_position,
            "type_vocab_size": self.type_vocab_size,
            "dropout": self.dropout,
            "attention_dropout": self.attention_dropout,
            "initializer_range": self.initializer_range,
            "layer_norm_eps": self.layer_norm_eps,
        }

    @classmethod
    def from_config(cls, config: dict) -> ElectraBackbone:
        config = dict(config)
        if isinstance(config.get("dtype"), dict):
            config["dtype"] = keras.dtype_policies.deserialize(config["dtype"])
        return cls(**config)
