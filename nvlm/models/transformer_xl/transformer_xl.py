"""The Transformer-XL language model: adaptive embedding, relative decoder layers with segment
memories, adaptive softmax."""

from __future__ import annotations

import keras
import tensorflow as tf

from nvlm.layers.adaptive_embedding import AdaptiveEmbedding
from nvlm.layers.adaptive_softmax import AdaptiveSoftmax
from nvlm.layers.dropout import Dropout
from nvlm.layers.multi_head_self_attention import MASK_NEGATIVE
from nvlm.layers.relative_positional_embedding import RelativePositionalEmbedding
from nvlm.layers.relative_transformer_block import RelativeTransformerBlock


def attention_bias(qlen, mlen, valid, *, same_length: bool, dtype):
    """Additive mask `[qlen, mlen + qlen]` over [memory slots; segment].

    Memory slot s (0..mlen-1) holds the state `mlen - s` positions before the segment; only
    the last `valid` slots hold real states (the first segments after a reset have fewer).
    Query i may see key j when j is not in the future (distance `i + mlen - j >= 0`), is a real
    state, and, with `same_length`, lies within the last mlen positions (distance < mlen): every
    query then attends to the same number of positions, as the reference's evaluation does.
    """
    i = tf.range(qlen)[:, None]
    j = tf.range(mlen + qlen)[None, :]
    distance = i + mlen - j
    allowed = (distance >= 0) & (j >= mlen - valid)
    if same_length:  # (no memory: nothing to restrict)
        allowed &= (distance < mlen) | (mlen == 0)
    return tf.where(allowed, tf.zeros([], dtype), tf.cast(MASK_NEGATIVE, dtype))


@keras.saving.register_keras_serializable(package="nvlm")
class TransformerXL(keras.Model):
    """Transformer-XL (Dai et al. 2019): a decoder over a segment that attends to the cached
    hidden states of earlier segments, with relative positional attention.

    `call(tokens, memory, valid)` returns the final hidden states and the next memory. The
    memory holds, per row and per layer, the INPUT states of that layer for the last `mlen`
    positions ([batch, n_layer, mlen, d_model], compute dtype); `valid` says how many of those
    slots are real (0 after a reset). Memory shape, not a constructor argument, sets mlen, so
    one set of weights serves training (mem_len 192) and evaluation (640). The next memory is
    `concat(memory, layer input)[-mlen:]` per layer with no gradient (section 3.2).

    Scoring is `log_prob(hidden, targets)` / `log_probs(hidden)` through the adaptive softmax,
    in float32.

    Args: see `TransformerXLConfig` (the constructor arguments are its fields, minus `size`
    and `mem_len`).

    Example:
    >>> model = TransformerXL(vocab_size=50, n_layer=2, d_model=16, n_head=2, d_head=8,
    ...                       d_inner=32, cutoffs=[20])
    >>> tokens = tf.constant([[1, 2, 3]])
    >>> memory = model.empty_memory(batch=1, mem_len=4)
    >>> hidden, memory = model(tokens, memory, valid=0)
    >>> tuple(hidden.shape), tuple(memory.shape)
    ((1, 3, 16), (1, 2, 4, 16))
    """

    def __init__(
        self,
        vocab_size: int,
        n_layer: int,
        d_model: int,
        n_head: int,
        d_head: int,
        d_inner: int,
        d_embed: int = 0,
        div_val: int = 1,
        cutoffs=(),
        tie_weight: bool = True,
        tie_projs: bool = True,
        proj_share_all_but_first: bool = True,
        untie_r: bool = False,
        dropout: float = 0.0,
        attention_dropout: float = 0.0,
        clamp_len: int = -1,
        same_length: bool = False,
        init_std: float = 0.02,
        proj_init_std: float = 0.01,
        layer_norm_eps: float = 1e-5,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.vocab_size = vocab_size
        self.n_layer = n_layer
        self.d_model = d_model
        self.n_head = n_head
        self.d_head = d_head
        self.d_inner = d_inner
        self.d_embed = d_embed or d_model
        self.div_val = div_val
        self.cutoffs = list(cutoffs)
        self.tie_weight = tie_weight
        self.tie_projs = tie_projs
        self.proj_share_all_but_first = proj_share_all_but_first
        self.untie_r = untie_r
        self.dropout = dropout
        self.attention_dropout = attention_dropout
        self.clamp_len = clamp_len
        self.same_length = same_length
        self.init_std = init_std
        self.proj_init_std = proj_init_std
        self.layer_norm_eps = layer_norm_eps

        policy = self.dtype_policy
        self.embedding = AdaptiveEmbedding(
            vocab_size, self.d_embed, d_model, self.cutoffs, div_val, init_std=init_std,
            proj_init_std=proj_init_std, dtype=policy, name="embedding",
        )  # fmt: skip
        self.positions = RelativePositionalEmbedding(d_model, dtype=policy, name="positions")
        self.blocks = [
            RelativeTransformerBlock(
                d_model,
                n_head,
                d_head,
                d_inner,
                dropout=dropout,
                attention_dropout=attention_dropout,
                init_std=init_std,
                layer_norm_eps=layer_norm_eps,
                dtype=policy,
                name=f"layer_{i}",
            )  # fmt: skip
            for i in range(n_layer)
        ]
        for block in self.blocks:
            block.build()
        # X1's WikiText-103 setting: every tail projection tied, the head's kept separate.
        n_clusters = len(self.cutoffs) + 1
        shared = [not proj_share_all_but_first, *[True] * (n_clusters - 1)]
        self.softmax = AdaptiveSoftmax(
            vocab_size, self.d_embed, d_model, self.cutoffs, div_val, embedding=self.embedding,
            tie_weight=tie_weight, tie_projs=shared if tie_projs else [False] * n_clusters,
            init_std=init_std, proj_init_std=proj_init_std, dtype="float32", name="softmax",
        )  # fmt: skip
        self.embedding_dropout = Dropout(dropout, dtype=policy)
        self.position_dropout = Dropout(dropout, dtype=policy)
        self.output_dropout = Dropout(dropout, dtype=policy)
        init = keras.initializers.RandomNormal(stddev=init_std)
        bias_shape = (n_layer, n_head, d_head) if untie_r else (n_head, d_head)
        self.r_w_bias = self.add_weight(shape=bias_shape, initializer=init, name="r_w_bias")
        self.r_r_bias = self.add_weight(shape=bias_shape, initializer=init, name="r_r_bias")
        self.built = True

    def empty_memory(self, batch: int, mem_len: int):
        return tf.zeros([batch, self.n_layer, mem_len, self.d_model], self.compute_dtype)

    def call(self, tokens, memory, valid, training=None):
        dtype = self.compute_dtype
        tokens = tf.cast(tokens, tf.int32)
        memory = tf.cast(memory, dtype)
        qlen, mlen = tf.shape(tokens)[1], tf.shape(memory)[2]
        valid = tf.minimum(tf.cast(valid, tf.int32), mlen)
        mask = attention_bias(qlen, mlen, valid, same_length=self.same_length, dtype=dtype)
        position = self.position_dropout(
            self.positions(mlen + qlen, clamp_len=self.clamp_len), training=training
        )
        h = self.embedding_dropout(self.embedding(tokens), training=training)
        new_memory = []
        for i, block in enumerate(self.blocks):
            layer_memory = memory[:, i]
            new_memory.append(tf.concat([layer_memory, h], axis=1)[:, qlen:])
            r_w = self.r_w_bias[i] if self.untie_r else self.r_w_bias
            r_r = self.r_r_bias[i] if self.untie_r else self.r_r_bias
            h = block(h, layer_memory, position, r_w, r_r, mask, training=training)
        hidden = self.output_dropout(h, training=training)
        return hidden, tf.stop_gradient(tf.stack(new_memory, axis=1))

    def log_prob(self, hidden, targets):
        """Float32 log p(targets) `[batch, qlen]` for hidden `[batch, qlen, d_model]`."""
        shape = tf.shape(targets)
        flat = self.softmax.log_prob(
            tf.reshape(hidden, [-1, self.d_model]), tf.reshape(targets, [-1])
        )
        return tf.reshape(flat, shape)

    def log_probs(self, hidden):
        """Float32 log-probabilities of every word `[N, vocab]` for hidden `[N, d_model]`."""
        return self.softmax.log_probs(hidden)

    def get_config(self) -> dict:
        config = super().get_config()
        for name in (
            "vocab_size", "n_layer", "d_model", "n_head", "d_head", "d_inner", "d_embed",
            "div_val", "cutoffs", "tie_weight", "tie_projs", "proj_share_all_but_first",
            "untie_r", "dropout", "attention_dropout", "clamp_len", "same_length", "init_std",
            "proj_init_std", "layer_norm_eps",
        ):  # fmt: skip
            config[name] = getattr(self, name)
        return config
