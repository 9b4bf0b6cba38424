"""One post-LayerNorm Transformer encoder block (BERT, ELECTRA)."""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops
from tensorflow.python.ops import control_flow_util

from nvlm.layers.activations import bias_gelu, gelu
from nvlm.layers.dropout import Dropout
from nvlm.layers.layer_norm import LayerNorm
from nvlm.layers.multi_head_self_attention import MultiHeadSelfAttention
from nvlm.layers.positions import gather_rows


def _tracing_for_xla() -> bool:
    """True while a `jit_compile` function (or one it calls) is being traced: XLA needs
    static shapes, which the unpadded path (a data-dependent token count) does not have."""
    return control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph())


# Row counts of the unpadded path are rounded up to a multiple of `max(MIN_ROW_BUCKET, positions
# / ROW_SHAPES)`, so that the XLA kernels inside a block (bias + GELU, dropout) compile for at
# most `ROW_SHAPES` shapes per batch shape, at the cost of at most 1/ROW_SHAPES extra rows.
MIN_ROW_BUCKET = 16
ROW_SHAPES = 64


class _Packing:
    """The real tokens of a `[batch, seq]` mask as rows of a `[batch * seq, width]` tensor, and
    back, both ways a row gather (fast on CPU, unlike `scatter_nd`), each the other's gradient.

    `rows`: every real token's flattened position, then padding positions up to the bucket.
    `slots`: for every position, its row in the packed tensor, or `len(rows)` (a zero row) for
    positions left out.
    """

    def __init__(self, attention_mask):
        real = tf.cast(tf.reshape(attention_mask, [-1]) > 0, tf.int32)
        positions = tf.size(real)
        bucket = tf.maximum(MIN_ROW_BUCKET, positions // ROW_SHAPES)
        count = tf.minimum(positions, (tf.reduce_sum(real) + bucket - 1) // bucket * bucket)
        order = tf.argsort(real, direction="DESCENDING", stable=True)
        self.rows = order[:count]
        self.slots = tf.minimum(tf.math.invert_permutation(order), count)

    def pack(self, flat):
        """`[batch * seq, width]` -> `[rows, width]`."""

        @tf.custom_gradient
        def pack(flat):
            return tf.gather(flat, self.rows), self.unpack

        return pack(flat)

    def unpack(self, packed):
        """`[rows, width]` -> `[batch * seq, width]`, zeros at positions left out."""

        @tf.custom_gradient
        def unpack(packed):
            padded = tf.concat([packed, tf.zeros_like(packed[:1])], axis=0)
            return tf.gather(padded, self.slots), self.pack

        return unpack(packed)


@keras.saving.register_keras_serializable(package="nvlm")
class TransformerEncoderBlock(keras.layers.Layer):
    """Self-attention and a GELU feed-forward network, each followed by residual + LayerNorm.

    This is the post-LN block of the original Transformer as used by BERT:
    `x = LN(x + dropout(attention(x)))`, then `x = LN(x + dropout(W2 gelu(W1 x)))`, with the
    exact (erf) GELU. The sub-layer names follow the checkpoint names of Google's BERT
    (`attention`, `attention_norm` = `attention/output/LayerNorm`, `intermediate`, `output`,
    `output_norm` = `output/LayerNorm`), which keeps the conversion tables short.

    Args:
        hidden_size: model width.
        num_heads: number of attention heads.
        intermediate_size: width of the feed-forward hidden layer (4 x hidden in BERT).
        dropout: dropout rate on the attention output and the feed-forward output.
        attention_dropout: dropout rate on the attention probabilities.
        layer_norm_eps: LayerNorm epsilon (1e-12 in BERT).
        initializer_range: standard deviation of the truncated normal kernel initialiser.
        **kwargs: standard `keras.layers.Layer` arguments.

    Call arguments:
        x: `[batch, seq, hidden]`.
        attention_mask: optional 1/0 mask, see `MultiHeadSelfAttention`.
        training: whether dropout is active.
        query_positions: optional int `[batch, P]`: the block's output only at these
            positions, `[batch, P, hidden]` (see `MultiHeadSelfAttention`).
        unpad: compute the per-token layers on the real tokens of a `[batch, seq]` mask only
            (see `_call_unpadded`); padding rows of the output are then not computed (zeros,
            or values no head may read). Ignored when traced for XLA (which needs static
            shapes).

    Example:
    >>> block = TransformerEncoderBlock(hidden_size=16, num_heads=2, intermediate_size=64)
    >>> x = keras.random.normal((2, 5, 16))
    >>> tuple(block(x, attention_mask=keras.ops.ones((2, 5))).shape)
    (2, 5, 16)
    """

    def __init__(
        self,
        hidden_size: int,
        num_heads: int,
        intermediate_size: int,
        dropout: float = 0.0,
        attention_dropout: float = 0.0,
        layer_norm_eps: float = 1e-12,
        initializer_range: float = 0.02,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.hidden_size = hidden_size
        self.num_heads = num_heads
        self.intermediate_size = intermediate_size
        self.dropout = dropout
        self.attention_dropout = attention_dropout
        self.layer_norm_eps = layer_norm_eps
        self.initializer_range = initializer_range

        init = keras.initializers.TruncatedNormal(stddev=initializer_range)
        policy = self.dtype_policy
        self.attention = MultiHeadSelfAttention(
            hidden_size,
            num_heads,
            attention_dropout=attention_dropout,
            initializer_range=initializer_range,
            dtype=policy,
            name="attention",
        )
        self.attention_norm = LayerNorm(epsilon=layer_norm_eps, dtype=policy, name="attention_norm")
        self.intermediate = keras.layers.Dense(
            intermediate_size,
            activation=gelu,
            kernel_initializer=init,
            dtype=policy,
            name="intermediate",
        )
        self.output_dense = keras.layers.Dense(
            hidden_size, kernel_initializer=init, dtype=policy, name="output"
        )
        self.output_norm = LayerNorm(epsilon=layer_norm_eps, dtype=policy, name="output_norm")
        self.dropout_layer = Dropout(dropout, dtype=policy)

    def build(self, input_shape) -> None:
        shape = (None, None, self.hidden_size)
        self.attention.build(shape)
        self.attention_norm.build(shape)
        self.intermediate.build(shape)
        self.output_dense.build((None, None, self.intermediate_size))
        self.output_norm.build(shape)
        self.built = True

    def call(self, x, attention_mask=None, training=None, query_positions=None, unpad=False):
        if (
            unpad
            and query_positions is None
            and attention_mask is not None
            and len(attention_mask.shape) == 2
            and not _tracing_for_xla()
        ):
            return self._call_unpadded(x, attention_mask, training)
        context = self.attention.attend(x, attention_mask, training, query_positions)
        if query_positions is not None:
            x = gather_rows(x, query_positions)
        return self._after_attention(x, context, training)

    def _after_attention(self, x, context, training):
        """Output projection, residual + LayerNorm, feed-forward, residual + LayerNorm: the
        per-token rest of the block, for `x` and its heads' `context` (same rows)."""
        attended = self.attention.output_dense(context)
        x = self.attention_norm(x + self.dropout_layer(attended, training=training))
        hidden = self.output_dense(self._feed_forward_in(x))
        return self.output_norm(x + self.dropout_layer(hidden, training=training))

    def _call_unpadded(self, x, attention_mask, training):
        """`call` with every per-token layer (the QKV and output projections, the feed-forward
        network, LayerNorms, dropout) on the real tokens only, `[tokens, hidden]`; only the
        attention itself runs on the padded `[batch, seq]` layout. The outputs at real tokens
        are `call`'s; padding rows are zeros or computed as usual (see `_Packing`): callers
        that unpad never read them.
        """
        batch, seq_len = ops.shape(x)[0], ops.shape(x)[1]
        width = self.hidden_size
        packing = _Packing(attention_mask)
        tokens = packing.pack(tf.reshape(x, [-1, width]))

        projected = packing.unpack(self.attention.qkv(tokens))
        projected = tf.reshape(projected, [batch, seq_len, 3 * width])
        context = self.attention.attend(x, attention_mask, training, projected=projected)
        context = packing.pack(tf.reshape(context, [-1, width]))
        tokens = self._after_attention(tokens, context, training)
        return tf.reshape(packing.unpack(tokens), [batch, seq_len, width])

    def _feed_forward_in(self, x):
        """`self.intermediate(x)`, with the bias add and GELU (and their gradients) fused."""
        dense = self.intermediate
        kernel = ops.cast(dense.kernel, self.compute_dtype)
        return bias_gelu(ops.matmul(x, kernel), ops.cast(dense.bias, self.compute_dtype))

    def compute_output_shape(self, x_shape, attention_mask_shape=None, query_positions_shape=None):
        if query_positions_shape is not None:
            return (*query_positions_shape, x_shape[-1])
        return x_shape

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            hidden_size=self.hidden_size,
            num_heads=self.num_heads,
            intermediate_size=self.intermediate_size,
            dropout=self.dropout,
            attention_dropout=self.attention_dropout,
            layer_norm_eps=self.layer_norm_eps,
            initializer_range=self.initializer_range,
        )
        return config
