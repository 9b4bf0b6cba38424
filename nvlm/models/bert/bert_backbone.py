"""The BERT encoder: embeddings, a stack of Transformer blocks and the [CLS] pooler."""

from __future__ import annotations

import keras

from nvlm.layers import Embeddings, TransformerEncoderBlock

# Input names, as the datasets of Google's and NVIDIA's pretraining shards.
BACKBONE_INPUTS = ("input_ids", "input_mask", "segment_ids")


def select_inputs(inputs, names: tuple[str, ...]):
    """The entries `names` of a feature dict, so that a whole batch (with labels) can be passed.

    A Keras functional model flattens a dict with extra keys POSITIONALLY onto its inputs
    (with only a warning), which would feed e.g. `masked_lm_ids` in as `input_mask`.
    """
    if not isinstance(inputs, dict):
        return inputs
    missing = [name for name in names if name not in inputs]
    if missing:
        raise KeyError(f"model inputs lack {missing}; got {sorted(inputs)}")
    return {name: inputs[name] for name in names}


@keras.saving.register_keras_serializable(package="nvlm")
class BertBackbone(keras.Model):
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
        # === Layers ===
        embeddings = Embeddings(
            vocab_size,
            hidden_size,
            max_position=max_position,
            type_vocab_size=type_vocab_size,
            dropout=dropout,
            layer_norm_eps=layer_norm_eps,
            initializer_range=initializer_range,
            dtype=dtype,
            name="embeddings",
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
        pooler = keras.layers.Dense(
            hidden_size,
            activation="tanh",
            kernel_initializer=keras.initializers.TruncatedNormal(stddev=initializer_range),
            dtype=dtype,
            name="pooler",
        )

        # === Functional graph ===
        inputs = {
            name: keras.Input(shape=(None,), dtype="int32", name=name) for name in BACKBONE_INPUTS
        }
        x = embeddings(inputs["input_ids"], inputs["segment_ids"])
        hidden_states = [x]
        for block in blocks:
            x = block(x, attention_mask=inputs["input_mask"])
            hidden_states.append(x)
        outputs = {
            "sequence_output": x,
            "pooled_output": pooler(x[:, 0, :]),
            "hidden_states": hidden_states,
        }
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # === Config ===
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.intermediate_size = intermediate_size
        self.max_position = max_position
        self.type_vocab_size = type_vocab_size
        self.dropout = dropout
        self.attention_dropout = attention_dropout
        self.initializer_range = initializer_range
        self.layer_norm_eps = layer_norm_eps
        self.embeddings = embeddings
        self.blocks = blocks
        self.pooler = pooler

    def __call__(self, inputs, *args, **kwargs):
        return super().__call__(select_inputs(inputs, BACKBONE_INPUTS), *args, **kwargs)

    @property
    def token_embedding(self) -> keras.layers.Embedding:
        """The word embedding layer (the matrix a masked-LM head ties to)."""
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
            "max_position": self.max_position,
            "type_vocab_size": self.type_vocab_size,
            "dropout": self.dropout,
            "attention_dropout": self.attention_dropout,
            "initializer_range": self.initializer_range,
            "layer_norm_eps": self.layer_norm_eps,
        }

    @classmethod
    def from_config(cls, config: dict) -> BertBackbone:
        config = dict(config)
        if isinstance(config.get("dtype"), dict):
            config["dtype"] = keras.dtype_policies.deserialize(config["dtype"])
        return cls(**config)
