"""Multi-head scaled dot-product self-attention with one fused QKV projection."""

from __future__ import annotations

import math

import keras
from keras import ops

from nvlm.layers.dropout import Dropout
from nvlm.layers.positions import gather_rows

# Added to the scores of masked keys. -10000 is what Google's BERT uses; it fits float16
# (max 65504) and bfloat16, and exp(-10000) underflows to exactly 0 in float32, so a masked
# key gets zero weight without an overflow to -inf (which turns fully masked rows into NaN).
MASK_NEGATIVE = -10000.0


@keras.saving.register_keras_serializable(package="nvlm")
class MultiHeadSelfAttention(keras.layers.Layer):
    """Self-attention over a `[batch, seq, hidden]` sequence (Vaswani et al. 2017, 3.2).

    Speed: the query, key and value projections are ONE dense layer with `3 * hidden_size`
    outputs (one large GEMM instead of three), reshaped to `[batch, seq, 3, heads, head_dim]`
    and transposed once to `[3, batch, heads, seq, head_dim]`. The scores are an einsum that
    TensorFlow maps to a batched matmul with a transposed operand, so no copy of the keys is made.

    Checkpoint layout: the fused kernel is `[hidden, 3 * hidden]` = the concatenation along the
    output axis of the query, key and value kernels, each `[hidden, heads * head_dim]` with the
    output index `head * head_dim + d` -- the layout of Google's and Hugging Face's separate
    `query`/`key`/`value` weights (transposed for PyTorch), so conversion is a concatenation.

    Mixed precision: the projections run in the compute dtype; the mask is added in the compute
    dtype (see `MASK_NEGATIVE`) and the softmax runs in float32.

    Args:
        hidden_size: model width; must be divisible by `num_heads`.
        num_heads: number of attention heads.
        attention_dropout: dropout rate on the attention probabilities.
        initializer_range: standard deviation of the truncated normal kernel initialiser.
        **kwargs: standard `keras.layers.Layer` arguments.

    Call arguments:
        x: `[batch, seq, hidden]`.
        attention_mask: optional, 1 = attend, 0 = ignore; `[batch, seq]` (a padding mask over
            keys) or `[batch, seq, seq]` (query x key).
        training: whether dropout is active.
        query_positions: optional int `[batch, P]`: compute the output only at these
            positions (`[batch, P, hidden]`), attending over the whole sequence; needs a
            `[batch, seq]` mask. Used by pretraining for the last layer, whose output is only
            read at the masked positions and [CLS].

    Example:
    >>> attention = MultiHeadSelfAttention(hidden_size=16, num_heads=2)
    >>> x = keras.random.normal((2, 5, 16))
    >>> mask = keras.ops.convert_to_tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    >>> tuple(attention(x, attention_mask=mask).shape)
    (2, 5, 16)
    """

    def __init__(
        self,
        hidden_size: int,
        num_heads: int,
        attention_dropout: float = 0.0,
        initializer_range: float = 0.02,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if hidden_size % num_heads:
            raise ValueError(f"hidden_size {hidden_size} is not divisible by num_heads {num_heads}")
        self.hidden_size = hidden_size
        self.num_heads = num_heads
        self.head_dim = hidden_size // num_heads
        self.attention_dropout = attention_dropout
        self.initializer_range = initializer_range

        init = keras.initializers.TruncatedNormal(stddev=initializer_range)
        self.qkv = keras.layers.Dense(
            3 * hidden_size, kernel_initializer=init, dtype=self.dtype_policy, name="qkv"
        )
        self.output_dense = keras.layers.Dense(
            hidden_size, kernel_initializer=init, dtype=self.dtype_policy, name="output"
        )
        self.dropout_layer = Dropout(attention_dropout, dtype=self.dtype_policy)

    def build(self, input_shape) -> None:
        self.qkv.build((None, None, self.hidden_size))
        self.output_dense.build((None, None, self.hidden_size))
        self.built = True

    def call(self, x, attention_mask=None, training=None, query_positions=None):
        return self.output_dense(self.attend(x, attention_mask, training, query_positions))

    def attend(self, x, attention_mask=None, training=None, query_positions=None, projected=None):
        """The heads' concatenated context vectors, `[batch, queries, hidden]`: `call`
        without the output projection (which a caller may fuse with what follows it).

        `projected`: `self.qkv(x)` already computed (`[batch, seq, 3 * hidden]`), e.g. on the
        real tokens only and scattered back (`TransformerEncoderBlock(unpad=True)`).
        """
        batch, seq_len = ops.shape(x)[0], ops.shape(x)[1]
        if query_positions is None:
            if projected is None:
                projected = self.qkv(x)
            query, key, value = self._split_heads(projected, 3)
            num_queries = seq_len
        else:
            query, key, value = self._subset_projections(x, query_positions)
            num_queries = ops.shape(query_positions)[1]
        # Scaling the queries (seq x head_dim values per head) is cheaper than scaling the
        # scores (seq x seq); the product is the same.
        query = query * ops.cast(1.0 / math.sqrt(self.head_dim), self.compute_dtype)

        scores = ops.einsum("bnqd,bnkd->bnqk", query, key)
        if attention_mask is not None:
            if query_positions is not None and len(attention_mask.shape) != 2:
                raise ValueError("query_positions needs a [batch, seq] padding mask")
            scores = scores + self._mask_bias(attention_mask)
        probs = ops.softmax(ops.cast(scores, "float32"), axis=-1)
        probs = self.dropout_layer(ops.cast(probs, self.compute_dtype), training=training)

        context = ops.einsum("bnqk,bnkd->bqnd", probs, value)
        return ops.reshape(context, (batch, num_queries, self.hidden_size))

    def _subset_projections(self, x, query_positions):
        """Queries at `query_positions` only (`[batch, P]`), keys and values everywhere.

        The fused kernel's query third multiplies the P gathered rows, its key/value two
        thirds all rows: the outputs at those positions equal the full layer's, for P/seq of
        the query, score, context and output-projection work.
        """
        width = self.hidden_size
        kernel = ops.cast(self.qkv.kernel, self.compute_dtype)
        bias = ops.cast(self.qkv.bias, self.compute_dtype)
        query = ops.matmul(gather_rows(x, query_positions), kernel[:, :width]) + bias[:width]
        key, value = self._split_heads(ops.matmul(x, kernel[:, width:]) + bias[width:], 2)
        (query,) = self._split_heads(query, 1)
        return query, key, value

    def _split_heads(self, projected, parts: int) -> list:
        """`[batch, seq, parts * hidden]` -> `parts` tensors `[batch, heads, seq, head_dim]`.

        One transpose to `[parts, batch, heads, seq, head_dim]`, then unstacked: the gradient
        of unstack is one stack, where slices would each scatter into a zero tensor of the
        full size.
        """
        batch, seq_len = ops.shape(projected)[0], ops.shape(projected)[1]
        heads = ops.reshape(projected, (batch, seq_len, parts, self.num_heads, self.head_dim))
        return ops.unstack(ops.transpose(heads, (2, 0, 3, 1, 4)), parts, axis=0)

    def _mask_bias(self, attention_mask):
        """1/0 mask -> additive bias broadcastable to `[batch, heads, query, key]`."""
        mask = ops.cast(attention_mask, self.compute_dtype)
        if len(mask.shape) == 2:
            mask = mask[:, None, None, :]
        elif len(mask.shape) == 3:
            mask = mask[:, None, :, :]
        return (1.0 - mask) * ops.cast(MASK_NEGATIVE, self.compute_dtype)

    def compute_output_shape(self, x_shape, attention_mask_shape=None, query_positions_shape=None):
        if query_positions_shape is not None:
            return (*query_positions_shape, x_shape[-1])
        return x_shape

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            hidden_size=self.hidden_size,
            num_heads=self.num_heads,
            attention_dropout=self.attention_dropout,
            initializer_range=self.initializer_range,
        )
        return config
