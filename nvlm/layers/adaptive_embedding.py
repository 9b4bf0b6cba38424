"""Adaptive input embeddings: narrower vectors for rarer words (Baevski & Auli 2019)."""

from __future__ import annotations

import math

import keras
import tensorflow as tf


def cluster_bounds(vocab_size: int, cutoffs) -> list[tuple[int, int]]:
    """[(start, end), ...] id ranges of the clusters: [0, c0), [c0, c1), ..., [c_last, V)."""
    ends = [0, *cutoffs, vocab_size]
    return list(zip(ends[:-1], ends[1:], strict=True))


@keras.saving.register_keras_serializable(package="nvlm")
class AdaptiveEmbedding(keras.layers.Layer):
    """Word embeddings split into frequency clusters, projected to `d_model`, times sqrt(d_model).

    The vocabulary must be ordered by frequency. Cluster i (ids `[cutoffs[i-1], cutoffs[i])`)
    has vectors `d_embed // div_val**i` wide and a projection `[width_i, d_model]`; rare words
    get fewer parameters. With `div_val == 1` there is one table `[vocab, d_embed]` and a
    projection only when `d_embed != d_model` (X1 base: none). The scale sqrt(d_model) is the
    reference's (`emb_scale`). `tables` and `projections` are what an `AdaptiveSoftmax` ties to.

    Tables are read in float32 and gathered before the cast to the compute dtype, so a large
    table is never converted whole under mixed precision.

    Args:
        vocab_size: number of words.
        d_embed: width of the first cluster's vectors.
        d_model: output width.
        cutoffs: increasing cluster boundaries inside the vocabulary (may be empty).
        div_val: width divisor per cluster.
        init_std: standard deviation of the normal initialiser of the tables.
        proj_init_std: ... of the projections.
        **kwargs: standard `keras.layers.Layer` arguments.

    Example:
    >>> emb = AdaptiveEmbedding(100, 16, 16, cutoffs=[10, 50], div_val=2)
    >>> [tuple(t.shape) for t in emb.tables]
    [(10, 16), (40, 8), (50, 4)]
    >>> tuple(emb(tf.constant([[1, 20, 99]])).shape)
    (1, 3, 16)
    """

    def __init__(
        self,
        vocab_size: int,
        d_embed: int,
        d_model: int,
        cutoffs=(),
        div_val: int = 1,
        init_std: float = 0.02,
        proj_init_std: float = 0.01,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.vocab_size = vocab_size
        self.d_embed = d_embed
        self.d_model = d_model
        self.cutoffs = list(cutoffs)
        self.div_val = div_val
        self.init_std = init_std
        self.proj_init_std = proj_init_std
        self.bounds = cluster_bounds(vocab_size, self.cutoffs)
        self.build()

    def cluster_width(self, i: int) -> int:
        return self.d_embed // self.div_val**i

    def build(self, input_shape=None) -> None:
        if self.built:
            return
        table_init = keras.initializers.RandomNormal(stddev=self.init_std)
        proj_init = keras.initializers.RandomNormal(stddev=self.proj_init_std)
        self.tables, self.projections = [], []
        # Weights are read in float32 (autocast off) and cast after the gather.
        groups = [(0, self.vocab_size)] if self.div_val == 1 else self.bounds
        for i, (start, end) in enumerate(groups):
            width = self.cluster_width(i)
            self.tables.append(
                self.add_weight(shape=(end - start, width), initializer=table_init,
                                name=f"table_{i}", autocast=False)
            )  # fmt: skip
            needs_projection = self.div_val > 1 or width != self.d_model
            self.projections.append(
                self.add_weight(shape=(width, self.d_model), initializer=proj_init,
                                name=f"projection_{i}", autocast=False)
                if needs_projection else None
            )  # fmt: skip
        self.built = True

    def table_for(self, cluster: int):
        """(variable, first row) holding the vectors of `cluster`."""
        if self.div_val == 1:
            return self.tables[0], self.bounds[cluster][0]
        return self.tables[cluster], 0

    def projection_for(self, cluster: int):
        return self.projections[0 if self.div_val == 1 else cluster]

    def call(self, tokens):
        dtype = self.compute_dtype
        tokens = tf.cast(tokens, tf.int32)
        if self.div_val == 1:
            out = tf.gather(self.tables[0], tokens)
            if self.projections[0] is not None:
                out = tf.einsum("...e,ed->...d", out, self.projections[0])
        else:
            # Every cluster is computed for every token and masked (static shapes, XLA-friendly);
            # the projections are small next to the decoder layers.
            out = None
            for i, (start, end) in enumerate(self.bounds):
                inside = (tokens >= start) & (tokens < end)
                rows = tf.clip_by_value(tokens - start, 0, end - start - 1)
                vectors = tf.einsum(
                    "...e,ed->...d", tf.gather(self.tables[i], rows), self.projections[i]
                )
                vectors = vectors * tf.cast(inside, vectors.dtype)[..., None]
                out = vectors if out is None else out + vectors
        return tf.cast(out * math.sqrt(self.d_model), dtype)

    def compute_output_shape(self, input_shape):
        return (*input_shape, self.d_model)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            vocab_size=self.vocab_size,
            d_embed=self.d_embed,
            d_model=self.d_model,
            cutoffs=self.cutoffs,
            div_val=self.div_val,
            init_std=self.init_std,
            proj_init_std=self.proj_init_std,
        )
        return config
