"""Multi-head attention with relative positions over [memory; segment] (Transformer-XL)."""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from nvlm.layers.dropout import Dropout


def rel_shift(x):
    """Realign scores computed against distances `klen-1 .. 0` to key positions.

    `x[..., i, p]` is query i scored against distance `klen - 1 - p`; the result `y[..., i, j]`
    is query i against key j, i.e. distance `i + (klen - qlen) - j`:
    `y[..., i, j] = x[..., i, j + qlen - 1 - i]` for every key j the query may see (j <= i +
    mlen; the entries above that are garbage that the causal mask removes). Padding one zero
    column in front and re-reading the buffer as [klen + 1, qlen] shifts row i left by
    qlen - 1 - i in one reshape, with no gather (Dai et al. 2019, appendix B).

    Example:
    >>> x = tf.reshape(tf.range(6.0), (1, 1, 2, 3))   # qlen 2, klen 3
    >>> rel_shift(x)[0, 0].numpy().tolist()
    [[1.0, 2.0, 0.0], [3.0, 4.0, 5.0]]
    """
    shape = tf.shape(x)
    batch, heads, qlen, klen = shape[0], shape[1], shape[2], shape[3]
    x = tf.pad(x, [[0, 0], [0, 0], [0, 0], [1, 0]])
    x = tf.reshape(x, [batch, heads, klen + 1, qlen])
    return tf.reshape(x[:, :, 1:, :], [batch, heads, qlen, klen])


@keras.saving.register_keras_serializable(package="nvlm")
class RelativeMultiHeadAttention(keras.layers.Layer):
    """Attention of a segment over [memory; segment] with relative positional encodings.

    Dai et al. 2019 (section 3.3) score query i against key j as

        (q_i + u) . k_j  +  (q_i + v) . W_r R_{i-j}

    (content term "AC" and position term "BD"): `u` and `v` are learned biases (`r_w_bias`,
    `r_r_bias`, passed in so that a model can share them across layers) and R the sinusoid
    encoding of the distance. BD is computed against every distance once ([qlen, klen] per
    head) and realigned with `rel_shift`. Keys and values come from the concatenation of the
    memory (earlier segments' hidden states, no gradient) and the segment; queries only from
    the segment.

    Speed: the key/value projection is one dense layer (one GEMM); the 1/sqrt(d_head) scale is
    applied to the two biased queries ([qlen, heads, d_head]) rather than to the scores
    ([heads, qlen, klen]). Softmax runs in float32, everything else in the compute dtype.

    Args:
        d_model: input and output width.
        n_head: attention heads.
        d_head: width per head.
        attention_dropout: dropout on the attention probabilities (dropatt).
        init_std: standard deviation of the normal kernel initialiser.
        **kwargs: standard `keras.layers.Layer` arguments.

    Call arguments:
        x: the segment, `[batch, qlen, d_model]`.
        memory: `[batch, mlen, d_model]` (mlen may be 0).
        position: `[klen, d_model]` encodings of distances klen-1 .. 0 (klen = mlen + qlen).
        r_w_bias, r_r_bias: `[n_head, d_head]`.
        attention_bias: additive `[qlen, klen]` mask (0 = attend, large negative = not).
        training: whether dropout is active.

    Example:
    >>> att = RelativeMultiHeadAttention(d_model=8, n_head=2, d_head=4)
    >>> x, mem = tf.ones((1, 3, 8)), tf.ones((1, 2, 8))
    >>> pos, bias = tf.ones((5, 8)), tf.zeros((3, 5))
    >>> tuple(att(x, mem, pos, tf.zeros((2, 4)), tf.zeros((2, 4)), bias).shape)
    (1, 3, 8)
    """

    def __init__(
        self,
        d_model: int,
        n_head: int,
        d_head: int,
        attention_dropout: float = 0.0,
        init_std: float = 0.02,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.d_model = d_model
        self.n_head = n_head
        self.d_head = d_head
        self.attention_dropout = attention_dropout
        self.init_std = init_std
        init = keras.initializers.RandomNormal(stddev=init_std)
        width = n_head * d_head
        policy = self.dtype_policy
        dense = dict(use_bias=False, kernel_initializer=init, dtype=policy)
        self.query = keras.layers.Dense(width, name="query", **dense)
        self.key_value = keras.layers.Dense(2 * width, name="key_value", **dense)
        self.position = keras.layers.Dense(width, name="position", **dense)
        self.output_dense = keras.layers.Dense(d_model, name="output", **dense)
        self.dropout_layer = Dropout(attention_dropout, dtype=policy)

    def build(self, input_shape=None) -> None:
        for layer in (self.query, self.key_value, self.position):
            layer.build((None, None, self.d_model))
        self.output_dense.build((None, None, self.n_head * self.d_head))
        self.built = True

    def call(self, x, memory, position, r_w_bias, r_r_bias, attention_bias, training=None):
        dtype = self.compute_dtype
        batch, qlen = tf.shape(x)[0], tf.shape(x)[1]
        keys_in = tf.concat([tf.cast(memory, dtype), x], axis=1)
        klen = tf.shape(keys_in)[1]
        heads, d_head = self.n_head, self.d_head

        q = tf.reshape(self.query(x), [batch, qlen, heads, d_head])
        kv = tf.reshape(self.key_value(keys_in), [batch, klen, 2, heads, d_head])
        k, v = kv[:, :, 0], kv[:, :, 1]
        r = tf.reshape(self.position(position[None])[0], [klen, heads, d_head])

        scale = tf.cast(1.0 / math.sqrt(d_head), dtype)
        q_content = (q + tf.cast(r_w_bias, dtype)) * scale
        q_position = (q + tf.cast(r_r_bias, dtype)) * scale
        content = tf.einsum("bqnd,bknd->bnqk", q_content, k)
        positional = rel_shift(tf.einsum("bqnd,knd->bnqk", q_position, r))
        scores = content + positional + tf.cast(attention_bias, dtype)

        probs = tf.nn.softmax(tf.cast(scores, tf.float32), axis=-1)
        probs = self.dropout_layer(tf.cast(probs, dtype), training=training)
        context = tf.einsum("bnqk,bknd->bqnd", probs, v)
        context = tf.reshape(context, [batch, qlen, heads * d_head])
        return self.output_dense(context)

    def compute_output_shape(self, x_shape, *args, **kwargs):
        return x_shape

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            d_model=self.d_model,
            n_head=self.n_head,
            d_head=self.d_head,
            attention_dropout=self.attention_dropout,
            init_std=self.init_std,
        )
        return config
