"""One Transformer-XL decoder layer: relative attention over [memory; segment] + ReLU FFN."""

from __future__ import annotations

import keras

from nvlm.layers.dropout import Dropout
from nvlm.layers.layer_norm import LayerNorm
from nvlm.layers.relative_multi_head_attention import RelativeMultiHeadAttention


@keras.saving.register_keras_serializable(package="nvlm")
class RelativeTransformerBlock(keras.layers.Layer):
    """Post-LayerNorm decoder layer of Transformer-XL (Dai et al. 2019, section 3.3):

        h = LN(x + dropout(RelAttention(x, memory)))
        y = LN(h + dropout(W2 dropout(relu(W1 h + b1)) + b2))

    the reference's default (`pre_lnorm` off). Weights use a normal initialiser
    (`init_std`, 0.02 in X1), biases start at zero.

    Args:
        d_model: model width.
        n_head: attention heads.
        d_head: width per head.
        d_inner: feed-forward width.
        dropout: dropout on sub-layer outputs and inside the feed-forward network.
        attention_dropout: dropout on the attention probabilities.
        init_std: standard deviation of the normal kernel initialiser.
        layer_norm_eps: LayerNorm epsilon.
        **kwargs: standard `keras.layers.Layer` arguments.

    Call arguments:
        x: `[batch, qlen, d_model]`; memory: `[batch, mlen, d_model]`; position, r_w_bias,
        r_r_bias, attention_bias: see `RelativeMultiHeadAttention`; training.

    Example:
    >>> import tensorflow as tf
    >>> block = RelativeTransformerBlock(d_model=8, n_head=2, d_head=4, d_inner=16)
    >>> x, mem = tf.ones((1, 3, 8)), tf.ones((1, 2, 8))
    >>> tuple(block(x, mem, tf.ones((5, 8)), tf.zeros((2, 4)), tf.zeros((2, 4)),
    ...             tf.zeros((3, 5))).shape)
    (1, 3, 8)
    """

    def __init__(
        self,
        d_model: int,
        n_head: int,
        d_head: int,
        d_inner: int,
        dropout: float = 0.0,
        attention_dropout: float = 0.0,
        init_std: float = 0.02,
        layer_norm_eps: float = 1e-5,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.d_model = d_model
        self.n_head = n_head
        self.d_head = d_head
        self.d_inner = d_inner
        self.dropout = dropout
        self.attention_dropout = attention_dropout
        self.init_std = init_std
        self.layer_norm_eps = layer_norm_eps
        policy = self.dtype_policy
        init = keras.initializers.RandomNormal(stddev=init_std)
        self.attention = RelativeMultiHeadAttention(
            d_model, n_head, d_head, attention_dropout=attention_dropout, init_std=init_std,
            dtype=policy, name="attention",
        )  # fmt: skip
        self.attention_norm = LayerNorm(epsilon=layer_norm_eps, dtype=policy, name="attention_norm")
        self.inner = keras.layers.Dense(
            d_inner, activation="relu", kernel_initializer=init, dtype=policy, name="inner"
        )
        self.outer = keras.layers.Dense(
            d_model, kernel_initializer=init, dtype=policy, name="outer"
        )
        self.output_norm = LayerNorm(epsilon=layer_norm_eps, dtype=policy, name="output_norm")
        self.attention_dropout_layer = Dropout(dropout, dtype=policy)
        self.inner_dropout = Dropout(dropout, dtype=policy)
        self.outer_dropout = Dropout(dropout, dtype=policy)

    def build(self, input_shape=None) -> None:
        self.attention.build()
        self.attention_norm.build((None, None, self.d_model))
        self.inner.build((None, None, self.d_model))
        self.outer.build((None, None, self.d_inner))
        self.output_norm.build((None, None, self.d_model))
        self.built = True

    def call(self, x, memory, position, r_w_bias, r_r_bias, attention_bias, training=None):
        attended = self.attention(
            x, memory, position, r_w_bias, r_r_bias, attention_bias, training=training
        )
        h = self.attention_norm(x + self.attention_dropout_layer(attended, training=training))
        inner = self.inner_dropout(self.inner(h), training=training)
        return self.output_norm(h + self.outer_dropout(self.outer(inner), training=training))

    def compute_output_shape(self, x_shape, *args, **kwargs):
        return x_shape

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            d_model=self.d_model,
            n_head=self.n_head,
            d_head=self.d_head,
            d_inner=self.d_inner,
            dropout=self.dropout,
            attention_dropout=self.attention_dropout,
            init_std=self.init_std,
            layer_norm_eps=self.layer_norm_eps,
        )
        return config
