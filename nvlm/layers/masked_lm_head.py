"""Masked-LM head evaluated only at the masked positions, decoder tied to the embeddings."""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

from nvlm.layers.activations import gelu
from nvlm.layers.layer_norm import LayerNorm
from nvlm.layers.positions import gather_rows


@keras.saving.register_keras_serializable(package="nvlm")
class MaskedLMHead(keras.layers.Layer):
    """Predict the original word piece at each masked position (BERT's `cls/predictions`).

    `logits = LN(gelu(gather(h, positions) W + b)) E^T + output_bias`, where `E` is the word
    embedding matrix of the backbone (weight tying, Press & Wolf 2017, as in BERT).

    Speed: the hidden states are gathered at `masked_lm_positions` BEFORE the transform and the
    vocabulary projection, so the `[*, vocab]` matmul runs on `batch x max_predictions` rows
    (20 per sequence of 128 in the BERT recipe) instead of `batch x seq` rows -- 6.4x fewer
    FLOPs and activations in the largest matmul of the head. The projection is a matmul against
    `E` itself with a transposed operand (no copy of `E` forward or backward); under bf16 on a
    CPU it runs in float32 (see `_decoder_dtype`).

    ELECTRA's generator uses the same head with `embedding_size` < hidden (the transform maps
    hidden -> embedding size, and `E` is `[vocab, embedding_size]`).

    Args:
        vocab_size: rows of the tied embedding matrix.
        embedding_size: width of the tied embedding matrix (= hidden size in BERT).
        token_embedding: the `keras.layers.Embedding` whose matrix is the decoder. Not part of
            the config: the owning model passes it again when it is rebuilt.
        layer_norm_eps: LayerNorm epsilon.
        initializer_range: standard deviation of the truncated normal kernel initialiser.
        **kwargs: standard `keras.layers.Layer` arguments.

    Call arguments:
        sequence_output: `[batch, seq, hidden]`.
        positions: `[batch, predictions]` int positions into `seq` (padding entries may be 0).

    Returns:
        float32 logits `[batch, predictions, vocab_size]`.

    Example:
    >>> embedding = keras.layers.Embedding(100, 16)
    >>> embedding.build((None, None))
    >>> head = MaskedLMHead(100, 16, token_embedding=embedding)
    >>> h = keras.random.normal((2, 8, 16))
    >>> positions = keras.ops.convert_to_tensor([[1, 3], [2, 0]])
    >>> tuple(head(h, positions).shape)
    (2, 2, 100)
    """

    def __init__(
        self,
        vocab_size: int,
        embedding_size: int,
        token_embedding: keras.layers.Embedding | None = None,
        layer_norm_eps: float = 1e-12,
        initializer_range: float = 0.02,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.vocab_size = vocab_size
        self.embedding_size = embedding_size
        self.token_embedding = token_embedding
        self.layer_norm_eps = layer_norm_eps
        self.initializer_range = initializer_range

        init = keras.initializers.TruncatedNormal(stddev=initializer_range)
        self.transform = keras.layers.Dense(
            embedding_size,
            activation=gelu,
            kernel_initializer=init,
            dtype=self.dtype_policy,
            name="transform",
        )
        self.norm = LayerNorm(epsilon=layer_norm_eps, dtype=self.dtype_policy, name="norm")

    def build(self, sequence_output_shape, positions_shape=None) -> None:
        if self.token_embedding is None:
            raise ValueError("MaskedLMHead needs the token_embedding it is tied to")
        self.transform.build((None, sequence_output_shape[-1]))
        self.norm.build((None, self.embedding_size))
        self.output_bias = self.add_weight(
            shape=(self.vocab_size,), initializer="zeros", name="output_bias"
        )
        self.built = True

    def call(self, sequence_output, positions):
        batch = ops.shape(sequence_output)[0]
        width = sequence_output.shape[-1]
        gathered = ops.reshape(gather_rows(sequence_output, positions), (-1, width))

        hidden = self.norm(self.transform(gathered))
        dtype = self._decoder_dtype()
        table = ops.cast(self.token_embedding.embeddings, dtype)
        # tf.matmul with transpose_b: neither this product nor its gradient with respect to the
        # table ([vocab, embedding], 94 MB at BERT-base) materialises a transposed copy, which
        # an einsum's gradient did (100 ms per step on 2 CPU cores).
        logits = tf.linalg.matmul(ops.cast(hidden, dtype), table, transpose_b=True)
        logits = ops.cast(logits, "float32") + ops.cast(self.output_bias, "float32")
        return ops.reshape(logits, (batch, -1, self.vocab_size))

    def _decoder_dtype(self) -> str:
        """The dtype of the tied vocabulary projection: the compute dtype, except bf16 on CPU.

        A bfloat16 matmul on CPU (oneDNN) re-packs its `[vocab, embedding]` operand on every
        call, as it is a variable, not a constant; with only `batch x max_predictions` rows
        (160 at batch 8) that costs more than the product itself. In float32, on the float32
        table (no cast of 23 M values either), the projection took 83 instead of 139 ms of CPU
        forward and 249 instead of 374 ms forward + backward at BERT-base, batch 8 x 20
        predictions (2 Xeon cores, TF 2.21). GPUs keep the bf16 product (tensor cores).
        """
        if self.compute_dtype == "bfloat16" and not tf.config.list_physical_devices("GPU"):
            return "float32"
        return self.compute_dtype

    def compute_output_shape(self, sequence_output_shape, positions_shape):
        return (*positions_shape, self.vocab_size)

    def compute_output_spec(self, sequence_output, positions):
        return keras.KerasTensor((*positions.shape, self.vocab_size), dtype="float32")

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            vocab_size=self.vocab_size,
            embedding_size=self.embedding_size,
            layer_norm_eps=self.layer_norm_eps,
            initializer_range=self.initializer_range,
        )
        return config
