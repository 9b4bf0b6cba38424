"""Transformer-XL layers and model: memory equivalence, adaptive softmax, tying, masks."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from nvlm.errors import UserError
from nvlm.layers.adaptive_embedding import AdaptiveEmbedding
from nvlm.layers.adaptive_softmax import AdaptiveSoftmax
from nvlm.layers.relative_multi_head_attention import rel_shift
from nvlm.layers.relative_positional_embedding import RelativePositionalEmbedding
from nvlm.models.transformer_xl.config import TransformerXLConfig
from nvlm.models.transformer_xl.evaluation import stream_log_probs
from nvlm.models.transformer_xl.transformer_xl import TransformerXL, attention_bias
from nvlm.resolve import resolve

VOCAB = 60


def sharpen(model, std: float = 0.25, seed: int = 0) -> None:
    """Larger random weights than the 0.02 initialiser, so that attention is far from uniform
    and a missing or misplaced context changes the log-likelihoods a lot."""
    rng = np.random.default_rng(seed)
    for v in model.trainable_variables:
        if len(v.shape) >= 2 or "bias" in v.path:
            v.assign(rng.normal(0, std, v.shape).astype(np.float32))


def tiny(**kw) -> TransformerXL:
    keras.utils.set_random_seed(1)
    args = dict(vocab_size=VOCAB, n_layer=2, d_model=32, n_head=2, d_head=16, d_inner=64)
    return TransformerXL(**{**args, **kw})


@pytest.mark.parametrize(
    "kw",
    [
        dict(cutoffs=[]),
        dict(cutoffs=[20, 40], div_val=2, untie_r=True, clamp_len=1000),
    ],
)
def test_memory_gives_the_log_likelihoods_of_the_whole_prefix(kw):
    model = tiny(dropout=0.3, attention_dropout=0.2, **kw)  # inactive: training=False
    sharpen(model)
    ids = np.random.default_rng(3).integers(0, VOCAB, 61).astype(np.int32)
    whole, _, _ = stream_log_probs(model, ids, batch_size=1, tgt_len=60, mem_len=0)
    segments, _, _ = stream_log_probs(model, ids, batch_size=1, tgt_len=7, mem_len=64)
    np.testing.assert_allclose(segments, whole, atol=1e-4, rtol=0)
    # The check has teeth: without the memory the same segments score differently.
    forgetful, _, _ = stream_log_probs(model, ids, batch_size=1, tgt_len=7, mem_len=0)
    assert np.abs(forgetful - whole).max() > 1e-2
    # Several streams score each token once: the first target of each stream has 1 token of
    # context, the others the same as one stream of the same text.
    four, _, streams = stream_log_probs(model, ids, batch_size=4, tgt_len=7, mem_len=64)
    assert streams == 4 and four.shape == whole.shape
    np.testing.assert_allclose(four[:15], whole[:15], atol=1e-4, rtol=0)


def test_adaptive_softmax_is_a_distribution_and_scores_targets_consistently():
    emb = AdaptiveEmbedding(VOCAB, 16, 24, cutoffs=[10, 30], div_val=2)
    softmax = AdaptiveSoftmax(VOCAB, 16, 24, [10, 30], 2, embedding=emb, tie_weight=True,
                              tie_projs=[False, True, True], dtype="float32")  # fmt: skip
    for v in softmax.trainable_variables + emb.trainable_variables:
        v.assign(np.random.default_rng(0).normal(0, 0.5, v.shape).astype(np.float32))
    hidden = tf.random.stateless_normal((9, 24), seed=(1, 2))
    logp = softmax.log_probs(hidden)
    assert logp.shape == (9, VOCAB)
    np.testing.assert_allclose(tf.reduce_sum(tf.exp(logp), -1).numpy(), 1.0, atol=1e-5)
    targets = tf.constant([0, 9, 10, 29, 30, 59, 5, 45, 12])
    expected = tf.gather(logp, targets, batch_dims=1).numpy()
    np.testing.assert_allclose(softmax.log_prob(hidden, targets).numpy(), expected, atol=1e-5)
    # The static-shape path used under XLA scores the same.
    softmax.dense_tails = True
    np.testing.assert_allclose(softmax.log_prob(hidden, targets).numpy(), expected, atol=1e-5)


def test_plain_softmax_sums_to_one():
    model = tiny(cutoffs=[])
    sharpen(model)
    hidden, _ = model(tf.constant([[1, 2, 3]]), model.empty_memory(1, 0), valid=0)
    p = tf.exp(model.log_probs(tf.reshape(hidden, [-1, 32])))
    np.testing.assert_allclose(tf.reduce_sum(p, -1).numpy(), 1.0, atol=1e-5)


def test_tying_shares_the_embedding_variables():
    tied = tiny(cutoffs=[20, 40], div_val=2)
    shared = tied.softmax.tied_variables()
    names = sorted(v.path for v in shared)
    # Every table; the projections of the tails but not of the head (X1's WT103 choice).
    assert names == ["embedding/projection_1", "embedding/projection_2", "embedding/table_0",
                     "embedding/table_1", "embedding/table_2"]  # fmt: skip
    assert all(any(v is w for w in tied.embedding.weights) for v in shared)
    ids = [id(v) for v in tied.trainable_variables]
    assert len(ids) == len(set(ids)), "a tied variable is listed twice"
    untied = tiny(cutoffs=[20, 40], div_val=2, tie_weight=False, tie_projs=False)
    assert untied.softmax.tied_variables() == []
    # Its own 3 tables and 2 more projections (the head's was its own already).
    assert len(untied.trainable_variables) == len(tied.trainable_variables) + 5
    # The output layer really reads the embedding: a word never in the input gets a gradient
    # in its embedding row through the softmax.
    tokens, targets = tf.constant([[1, 2]]), tf.constant([[3, 4]])
    with tf.GradientTape() as tape:
        hidden, _ = tied(tokens, tied.empty_memory(1, 0), valid=0)
        loss = -tf.reduce_sum(tied.log_prob(hidden, targets))
    grad = tf.convert_to_tensor(tape.gradient(loss, tied.embedding.tables[0]))
    assert float(tf.norm(grad[3])) > 0


def test_rel_shift_aligns_distances_to_keys():
    q, m = 3, 4
    k = q + m
    x = tf.random.stateless_normal((2, 2, q, k), seed=(0, 1))
    y = rel_shift(x).numpy()
    for i in range(q):
        for j in range(i + m + 1):  # the keys query i may see
            distance = i + m - j
            np.testing.assert_allclose(y[:, :, i, j], x.numpy()[:, :, i, k - 1 - distance])


def test_mask_memory_validity_causality_and_same_length():
    allowed = attention_bias(3, 4, 2, same_length=False, dtype=tf.float32).numpy() == 0
    assert allowed.tolist() == [
        [False, False, True, True, True, False, False],
        [False, False, True, True, True, True, False],
        [False, False, True, True, True, True, True],
    ]
    same = attention_bias(3, 4, 4, same_length=True, dtype=tf.float32).numpy() == 0
    assert same.sum(axis=1).tolist() == [4, 4, 4]  # every query sees mem_len positions
    assert same[0].tolist() == [False, True, True, True, True, False, False]


def test_clamp_len_reuses_the_encoding_of_the_largest_distance():
    enc = RelativePositionalEmbedding(8)(klen=10, clamp_len=3).numpy()
    # Row p encodes distance 9 - p: distances 9..3 (rows 0..6) all look like distance 3.
    np.testing.assert_allclose(enc[:6], np.repeat(enc[6:7], 6, axis=0))
    assert not np.allclose(enc[6], enc[7])


def test_bf16_forward_is_finite_and_close_to_fp32():
    ids = tf.constant(np.random.default_rng(0).integers(0, VOCAB, (2, 9)))
    model = tiny(cutoffs=[20])
    sharpen(model, std=0.1)
    ref = model.log_prob(model(ids[:, :-1], model.empty_memory(2, 4), valid=0)[0], ids[:, 1:])
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        half = tiny(cutoffs=[20])
        for a, b in zip(half.trainable_variables, model.trainable_variables, strict=True):
            a.assign(b)
        hidden, memory = half(ids[:, :-1], half.empty_memory(2, 4), valid=0)
        assert memory.dtype == tf.bfloat16 and hidden.dtype == tf.bfloat16
        logp = half.log_prob(hidden, ids[:, 1:])
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert logp.dtype == tf.float32 and np.isfinite(logp.numpy()).all()
    np.testing.assert_allclose(logp.numpy(), ref.numpy(), atol=0.15)


def test_config_rejects_bad_cutoffs_and_memory():
    with pytest.raises(UserError, match=r"model.cutoffs=\[10, 5\] must be .*strictly increasing"):
        TransformerXLConfig(vocab_size=100, cutoffs=(10, 5))
    with pytest.raises(UserError, match=r"reach beyond the vocabulary of 100 words"):
        TransformerXLConfig(vocab_size=100, cutoffs=(50, 100))
    with pytest.raises(UserError, match=r"model.mem_len=-1 must be >= 0"):
        resolve("transformer-xl", "train", sets=["model.mem_len=-1"])
    cfg = resolve("transformer-xl", "train", sets=["model.size=large"]).config.model
    assert (cfg.n_layer, cfg.d_model, cfg.n_head, cfg.d_inner, cfg.div_val) == (
        18,
        1024,
        16,
        4096,
        4,
    )
