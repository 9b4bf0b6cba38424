"""Sinusoidal encodings of relative distances (Transformer-XL)."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="nvlm")
class RelativePositionalEmbedding(keras.layers.Layer):
    """Sinusoid encodings of the distances `klen - 1, ..., 1, 0` (no weights).

    Transformer-XL (Dai et al. 2019, section 3.3) encodes the distance i - j between a query and
    a key instead of absolute positions, with the fixed sinusoids of Vaswani et al. 2017:
    `[sin(d * f_0), ..., sin(d * f_{n-1}), cos(d * f_0), ..., cos(d * f_{n-1})]` where
    `f_k = 1 / 10000 ** (2k / d_model)`. Row p of the output encodes distance `klen - 1 - p`,
    the order `RelativeMultiHeadAttention`'s shift expects. With `clamp_len > 0`, larger
    distances reuse the encoding of `clamp_len` (evaluation with long memories, X1: 400).

    Args:
        d_model: width of the encodings (even).
        **kwargs: standard `keras.layers.Layer` arguments.

    Call arguments:
        klen: number of distances (memory length + segment length).
        clamp_len: largest distinct distance; <= 0 for none.

    Example:
    >>> enc = RelativePositionalEmbedding(8)
    >>> tuple(enc(klen=5).shape)
    (5, 8)
    >>> [round(float(v), 3) for v in enc(klen=5)[-1]]   # distance 0: sin 0 = 0, cos 0 = 1
    [0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0]
    """

    def __init__(self, d_model: int, **kwargs) -> None:
        super().__init__(**kwargs)
        if d_model % 2:
            raise ValueError(f"d_model {d_model} must be even for sinusoid encodings")
        self.d_model = d_model
        self.built = True

    def call(self, klen, clamp_len: int = -1):
        distance = ops.cast(ops.arange(klen - 1, -1, -1), "float32")
        if clamp_len > 0:
            distance = ops.minimum(distance, float(clamp_len))
        inv_freq = 1.0 / (
            10000.0 ** (ops.arange(0, self.d_model, 2, dtype="float32") / self.d_model)
        )
        angles = distance[:, None] * inv_freq[None, :]
        encoding = ops.concatenate([ops.sin(angles), ops.cos(angles)], axis=-1)
        return ops.cast(encoding, self.compute_dtype)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(d_model=self.d_model)
        return config
