"""The replaced-token-detection head of ELECTRA's discriminator."""

from __future__ import annotations

import keras
from keras import ops

from nvlm.layers import gelu


@keras.saving.register_keras_serializable(package="nvlm")
class DiscriminatorHead(keras.layers.Layer):
    """One logit per token: `w2 . gelu(W1 h + b1) + b2`; positive means "replaced".

    The head of Clark et al. 2020 (section 2: a sigmoid output layer on each token's state),
    with the hidden dense layer and activation of the released model (Hugging Face
    `discriminator_predictions.dense` / `.dense_prediction`).

    Args:
        hidden_size: width of the hidden layer (the discriminator's hidden size).
        initializer_range: standard deviation of the truncated normal kernel initialiser.
        **kwargs: standard `keras.layers.Layer` arguments.

    Call arguments:
        sequence_output: `[batch, seq, hidden]`.

    Returns:
        float32 logits `[batch, seq]`.

    Example:
    >>> head = DiscriminatorHead(16)
    >>> tuple(head(keras.random.normal((2, 5, 16))).shape)
    (2, 5)
    """

    def __init__(self, hidden_size: int, initializer_range: float = 0.02, **kwargs) -> None:
        super().__init__(**kwargs)
        self.hidden_size = hidden_size
        self.initializer_range = initializer_range
        init = keras.initializers.TruncatedNormal(stddev=initializer_range)
        self.dense = keras.layers.Dense(
            hidden_size, activation=gelu, kernel_initializer=init, dtype=self.dtype_policy,
            name="dense",
        )  # fmt: skip
        self.prediction = keras.layers.Dense(
            1, kernel_initializer=init, dtype=self.dtype_policy, name="prediction"
        )

    def build(self, input_shape) -> None:
        self.dense.build((None, None, input_shape[-1]))
        self.prediction.build((None, None, self.hidden_size))
        self.built = True

    def call(self, sequence_output):
        logits = self.prediction(self.dense(sequence_output))
        return ops.cast(ops.squeeze(logits, -1), "float32")

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1])

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(hidden_size=self.hidden_size, initializer_range=self.initializer_range)
        return config
