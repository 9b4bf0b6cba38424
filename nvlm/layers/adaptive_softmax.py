"""Adaptive softmax over a frequency-ordered vocabulary (Grave et al. 2017), tied to an
`AdaptiveEmbedding` as in Transformer-XL."""

from __future__ import annotations

import keras
import tensorflow as tf

from nvlm.layers.adaptive_embedding import AdaptiveEmbedding, cluster_bounds


class _Untracked:
    """Keras tracks layers and variables stored on a layer (and in its lists); references kept
    in here are not, so tied variables stay listed once, as the embedding's."""

    def __init__(self, **refs) -> None:
        self.__dict__.update(refs)


@keras.saving.register_keras_serializable(package="nvlm")
class AdaptiveSoftmax(keras.layers.Layer):
    """log p(word | hidden) with a head over the frequent words plus one entry per tail cluster.

    The head scores the first cluster's words and, for each tail cluster i, the event "the word
    is in cluster i"; a tail's own softmax scores the words inside it, so
    `log p(w) = log p_head(cluster(w)) + log p_tail(w)` (and `log p_head(w)` for head words).
    With no cutoffs this is a plain softmax. Cluster i scores `h P_i^T W_i^T + b_i` where W_i
    holds the cluster's word vectors and P_i its projection ([width_i, d_model], absent when
    width_i == d_model and div_val == 1).

    Tying (Transformer-XL, X1): `tie_weight` reuses the embedding tables as W_i; `tie_projs[i]`
    reuses the embedding projection of cluster i as P_i (X1's WikiText-103 setting ties every
    cluster but the first: `[False, True, True, True]`). Tied weights are the embedding's own
    variables, not copies. Biases, cluster vectors and untied projections belong to this layer.

    Training only scores the targets: each tail's softmax runs on the tokens whose target is
    in that tail (a gather), so the cost is the head plus a small share of the tails. That
    gather has a data-dependent size, which XLA compiles anew at every step (measured: 65 s a
    step for a 2-layer model on CPU); `dense_tails=True` (set when XLA is on) scores every
    tail for every token instead, with static shapes. The
    layer computes in float32 (it should run under a float32 policy): log-probabilities of a
    large vocabulary need more than 8 bits of mantissa.

    Args:
        vocab_size: number of words.
        d_embed: width of the first cluster's vectors.
        d_model: width of the hidden states scored.
        cutoffs: increasing cluster boundaries inside the vocabulary (may be empty).
        div_val: width divisor per cluster (as the embedding's).
        embedding: the `AdaptiveEmbedding` to tie to (required when tying).
        tie_weight: reuse the embedding tables.
        tie_projs: per cluster, reuse the embedding projection.
        init_std, proj_init_std: normal initialisers of untied weights.
        dense_tails: score every tail for every token (static shapes, for XLA).
        **kwargs: standard `keras.layers.Layer` arguments.

    Example:
    >>> emb = AdaptiveEmbedding(100, 16, 16, cutoffs=[10, 50], div_val=2)
    >>> sm = AdaptiveSoftmax(100, 16, 16, [10, 50], 2, embedding=emb, tie_weight=True,
    ...                      tie_projs=[False, True, True], dtype="float32")
    >>> p = tf.exp(sm.log_probs(tf.random.normal((3, 16))))
    >>> [round(float(s), 4) for s in tf.reduce_sum(p, axis=-1)]
    [1.0, 1.0, 1.0]
    """

    def __init__(
        self,
        vocab_size: int,
        d_embed: int,
        d_model: int,
        cutoffs=(),
        div_val: int = 1,
        *,
        embedding: AdaptiveEmbedding | None = None,
        tie_weight: bool = True,
        tie_projs=None,
        init_std: float = 0.02,
        proj_init_std: float = 0.01,
        dense_tails: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.dense_tails = dense_tails
        self.vocab_size = vocab_size
        self.d_embed = d_embed
        self.d_model = d_model
        self.cutoffs = list(cutoffs)
        self.div_val = div_val
        self.tie_weight = tie_weight
        self.tie_projs = list(tie_projs or [False] * (len(self.cutoffs) + 1))
        self.init_std = init_std
        self.proj_init_std = proj_init_std
        self.bounds = cluster_bounds(vocab_size, self.cutoffs)
        self.shortlist = self.bounds[0][1]
        if (tie_weight or any(self.tie_projs)) and embedding is None:
            raise ValueError("tying needs the AdaptiveEmbedding to tie to")
        self._refs = _Untracked(embedding=embedding, weights=[], projs=[])
        self.build()

    def build(self, input_shape=None) -> None:
        if self.built:
            return
        init = keras.initializers.RandomNormal(stddev=self.init_std)
        proj_init = keras.initializers.RandomNormal(stddev=self.proj_init_std)
        emb = self._refs.embedding
        n_tails = len(self.cutoffs)
        self.bias = self.add_weight(shape=(self.vocab_size,), initializer="zeros", name="bias")
        if n_tails:
            self.cluster_weight = self.add_weight(
                shape=(n_tails, self.d_embed), initializer=init, name="cluster_weight"
            )
            self.cluster_bias = self.add_weight(
                shape=(n_tails,), initializer="zeros", name="cluster_bias"
            )
        own_tables = []
        if not self.tie_weight:
            groups = [(0, self.vocab_size)] if self.div_val == 1 else self.bounds
            for i, (start, end) in enumerate(groups):
                own_tables.append(
                    self.add_weight(shape=(end - start, self._width(i)), initializer=init,
                                    name=f"table_{i}")
                )  # fmt: skip
        weights, projs = self._refs.weights, self._refs.projs
        for i, (start, _) in enumerate(self.bounds):
            if self.tie_weight:
                weights.append(emb.table_for(i))
            elif self.div_val == 1:
                weights.append((own_tables[0], start))
            else:
                weights.append((own_tables[i], 0))
            width = self._width(i if self.div_val > 1 else 0)
            needs_projection = self.div_val > 1 or width != self.d_model
            if not needs_projection:
                projs.append(None)
            elif self.tie_projs[i]:
                projs.append(emb.projection_for(i))
            else:
                projs.append(
                    self.add_weight(shape=(width, self.d_model), initializer=proj_init,
                                    name=f"projection_{i}")
                )  # fmt: skip
        self.built = True

    def _width(self, i: int) -> int:
        return self.d_embed // self.div_val**i

    def tied_variables(self) -> list:
        """The embedding variables this layer scores with (tests check they are shared)."""
        emb = self._refs.embedding
        if emb is None:
            return []
        own = {id(v) for v in emb.weights}
        used = [w for w, _ in self._refs.weights] + [p for p in self._refs.projs if p is not None]
        return [v for v in {id(v): v for v in used}.values() if id(v) in own]

    def _project(self, hidden, i: int):
        proj = self._refs.projs[i]
        return hidden if proj is None else tf.einsum("nd,ed->ne", hidden, proj)

    def _cluster_logits(self, projected, i: int):
        """Logits of cluster i's words for hidden states already projected for cluster i."""
        start, end = self.bounds[i]
        table, first = self._refs.weights[i]
        vectors = tf.convert_to_tensor(table)
        if first or vectors.shape[0] != end - start:
            vectors = vectors[first : first + end - start]
        return tf.matmul(projected, vectors, transpose_b=True) + self.bias[start:end]

    def _head_log_probs(self, hidden):
        projected = self._project(hidden, 0)
        logits = self._cluster_logits(projected, 0)
        if self.cutoffs:
            clusters = tf.matmul(projected, self.cluster_weight, transpose_b=True)
            logits = tf.concat([logits, clusters + self.cluster_bias], axis=-1)
        return tf.nn.log_softmax(logits, axis=-1)

    def log_prob(self, hidden, targets):
        """log p(targets) for hidden `[N, d_model]` and int targets `[N]`: float32 `[N]`."""
        hidden = tf.cast(hidden, tf.float32)
        targets = tf.cast(targets, tf.int32)
        head = self._head_log_probs(hidden)
        if not self.cutoffs:
            return tf.gather(head, targets, batch_dims=1)
        in_head = targets < self.shortlist
        out = tf.where(
            in_head,
            tf.gather(head, tf.minimum(targets, self.shortlist - 1), batch_dims=1),
            tf.zeros_like(targets, tf.float32),
        )
        for i in range(1, len(self.bounds)):
            start, end = self.bounds[i]
            cluster_col = self.shortlist + i - 1
            if self.dense_tails:
                tail = tf.nn.log_softmax(self._cluster_logits(self._project(hidden, i), i), axis=-1)
                rows_in = tf.clip_by_value(targets - start, 0, end - start - 1)
                picked = tf.gather(tail, rows_in, batch_dims=1) + head[:, cluster_col]
                out = tf.where((targets >= start) & (targets < end), picked, out)
                continue
            rows = tf.where((targets >= start) & (targets < end))[:, 0]
            projected = self._project(tf.gather(hidden, rows), i)
            tail = tf.nn.log_softmax(self._cluster_logits(projected, i), axis=-1)
            picked = tf.gather(tail, tf.gather(targets, rows) - start, batch_dims=1)
            cluster = tf.gather(tf.gather(head, rows), cluster_col, axis=1)
            out = tf.tensor_scatter_nd_update(out, rows[:, None], cluster + picked)
        return out

    def log_probs(self, hidden):
        """The whole distribution: float32 `[N, vocab_size]` log-probabilities."""
        hidden = tf.cast(hidden, tf.float32)
        head = self._head_log_probs(hidden)
        parts = [head[:, : self.shortlist]]
        for i in range(1, len(self.bounds)):
            tail = tf.nn.log_softmax(self._cluster_logits(self._project(hidden, i), i), axis=-1)
            parts.append(head[:, self.shortlist + i - 1 : self.shortlist + i] + tail)
        return tf.concat(parts, axis=-1)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            vocab_size=self.vocab_size,
            d_embed=self.d_embed,
            d_model=self.d_model,
            cutoffs=self.cutoffs,
            div_val=self.div_val,
            tie_weight=self.tie_weight,
            tie_projs=self.tie_projs,
            init_std=self.init_std,
            proj_init_std=self.proj_init_std,
            dense_tails=self.dense_tails,
        )
        return config
