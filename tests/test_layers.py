"""Shared layers: shapes, masks, the fused QKV layout, mixed precision, XLA."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from nvlm.layers import (
    Embeddings,
    LayerNorm,
    MaskedLMHead,
    MultiHeadSelfAttention,
    TransformerEncoderBlock,
    gelu,
)

HIDDEN, HEADS = 16, 4


def _padded_batch(seed: int = 0):
    """x [2, 6, HIDDEN] and a padding mask: row 0 has 4 real tokens, row 1 has 6."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(2, 6, HIDDEN)).astype(np.float32)
    mask = np.array([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]], np.int32)
    return x, mask


def test_gelu_is_the_exact_erf_form():
    xs = np.linspace(-4, 4, 41).astype(np.float32)
    expected = np.array([0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in xs], np.float32)
    np.testing.assert_allclose(np.asarray(gelu(xs)), expected, atol=1e-6)
    # ... and not the tanh approximation ("gelu_new"), which differs by ~1e-3 around |x| = 2.
    tanh_form = 0.5 * xs * (1 + np.tanh(np.sqrt(2 / np.pi) * (xs + 0.044715 * xs**3)))
    assert np.abs(np.asarray(gelu(xs)) - tanh_form).max() > 1e-4


def test_gelu_gradient_is_the_exact_derivative():
    xs = np.linspace(-5, 5, 51).astype(np.float32)
    x = tf.constant(xs)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = gelu(x)
    expected = [
        0.5 * (1 + math.erf(v / math.sqrt(2))) + v * math.exp(-0.5 * v * v) / math.sqrt(2 * math.pi)
        for v in xs
    ]
    np.testing.assert_allclose(tape.gradient(y, x).numpy(), expected, atol=1e-6)


def test_layer_norm_matches_keras_forward_and_backward():
    rng = np.random.default_rng(5)
    x = tf.constant(rng.normal(size=(2, 6, HIDDEN)) * 3 + 1, tf.float32)
    weight = tf.constant(rng.normal(size=(2, 6, HIDDEN)), tf.float32)
    ours, theirs = LayerNorm(epsilon=1e-12), keras.layers.LayerNormalization(epsilon=1e-12)
    ours.build(x.shape)
    theirs.build(x.shape)
    theirs.gamma.assign(rng.normal(size=HIDDEN) * 0.1 + 1)
    theirs.beta.assign(rng.normal(size=HIDDEN) * 0.1)
    ours.set_weights(theirs.get_weights())

    def forward_backward(layer):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
            loss = tf.reduce_sum(y * weight)  # a non-uniform upstream gradient
        return [y, *tape.gradient(loss, [x, layer.gamma, layer.beta])]

    for a, b in zip(forward_backward(ours), forward_backward(theirs), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=2e-5)


def test_layer_norm_keeps_float32_statistics_under_bfloat16():
    # A large mean: variance computed in bfloat16 would lose most of its digits.
    x16 = tf.cast(np.random.default_rng(6).normal(size=(4, HIDDEN)) + 100.0, tf.bfloat16)
    x = tf.cast(x16, tf.float32)
    norm = LayerNorm(dtype="mixed_bfloat16")
    y = norm(x16)
    assert y.dtype == tf.bfloat16 and norm.gamma.dtype == "float32"
    expected = (x - tf.reduce_mean(x, -1, keepdims=True)) / tf.math.reduce_std(x, -1, keepdims=True)
    # Only the output is rounded to bfloat16 (8 bits of mantissa: < 1% of |y| <= 3).
    assert np.abs(tf.cast(y, tf.float32).numpy() - expected.numpy()).max() < 0.02


def test_embeddings_shapes_and_default_segments():
    layer = Embeddings(vocab_size=50, hidden_size=HIDDEN, max_position=10)
    ids = np.array([[2, 7, 9, 3]], np.int32)
    out = layer(ids, np.zeros_like(ids))
    assert tuple(out.shape) == (1, 4, HIDDEN)
    np.testing.assert_allclose(np.asarray(layer(ids)), np.asarray(out), atol=1e-6)
    assert tuple(layer.position_embeddings.shape) == (10, HIDDEN)
    assert layer.projection is None


def test_embeddings_project_a_smaller_embedding_to_hidden_size():
    # ELECTRA: embedding tables of width 8, projected to the hidden size 16.
    layer = Embeddings(vocab_size=50, hidden_size=HIDDEN, max_position=10, embedding_size=8)
    out = layer(np.array([[1, 2, 3]], np.int32))
    assert tuple(out.shape) == (1, 3, HIDDEN)
    assert tuple(layer.word_embeddings.embeddings.shape) == (50, 8)
    assert tuple(layer.projection.kernel.shape) == (8, HIDDEN)


def _reference_attention(layer: MultiHeadSelfAttention, x: np.ndarray, mask: np.ndarray):
    """Plain numpy multi-head attention from SEPARATE q/k/v weights sliced out of the fused
    kernel as a converter would: [q | k | v] along the output axis, head-major inside."""
    kernel = layer.qkv.kernel.numpy()
    bias = layer.qkv.bias.numpy()
    h, n, d = layer.hidden_size, layer.num_heads, layer.head_dim
    q, k, v = (x @ kernel[:, i * h : (i + 1) * h] + bias[i * h : (i + 1) * h] for i in range(3))

    def heads(t):
        return t.reshape(t.shape[0], t.shape[1], n, d).transpose(0, 2, 1, 3)

    scores = heads(q) @ heads(k).transpose(0, 1, 3, 2) / math.sqrt(d)
    scores = np.where(mask[:, None, None, :] > 0, scores, -np.inf)
    probs = np.exp(scores - scores.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    context = (probs @ heads(v)).transpose(0, 2, 1, 3).reshape(x.shape[0], x.shape[1], h)
    return context @ layer.output_dense.kernel.numpy() + layer.output_dense.bias.numpy()


def test_attention_matches_reference_with_separate_qkv_weights():
    layer = MultiHeadSelfAttention(HIDDEN, HEADS, initializer_range=0.5)
    x, mask = _padded_batch()
    out = np.asarray(layer(x, attention_mask=mask))
    np.testing.assert_allclose(out, _reference_attention(layer, x, mask), atol=1e-5)


@pytest.mark.parametrize("mask_rank", [2, 3])
def test_attention_ignores_padded_keys(mask_rank):
    layer = MultiHeadSelfAttention(HIDDEN, HEADS, initializer_range=0.5)
    x, mask = _padded_batch()
    full_mask = mask if mask_rank == 2 else np.repeat(mask[:, None, :], 6, axis=1)
    garbage = x.copy()
    garbage[0, 4:] = 100.0  # padding positions of row 0
    a = np.asarray(layer(x, attention_mask=full_mask))
    b = np.asarray(layer(garbage, attention_mask=full_mask))
    np.testing.assert_allclose(a[0, :4], b[0, :4], atol=1e-5)
    np.testing.assert_allclose(a[1], b[1], atol=1e-6)
    # Without the mask the padding does change the real positions (the test can fail).
    c = np.asarray(layer(garbage))
    assert np.abs(c[0, :4] - a[0, :4]).max() > 1e-2


def test_encoder_block_ignores_padding_and_round_trips_its_config():
    block = TransformerEncoderBlock(HIDDEN, HEADS, intermediate_size=32, dropout=0.1)
    x, mask = _padded_batch()
    garbage = x.copy()
    garbage[0, 4:] = -50.0
    a = np.asarray(block(x, attention_mask=mask))
    b = np.asarray(block(garbage, attention_mask=mask))
    np.testing.assert_allclose(a[0, :4], b[0, :4], atol=1e-5)
    assert tuple(a.shape) == (2, 6, HIDDEN)
    clone = TransformerEncoderBlock.from_config(block.get_config())
    assert clone.get_config() == block.get_config()


def test_encoder_block_dropout_only_in_training():
    block = TransformerEncoderBlock(HIDDEN, HEADS, intermediate_size=32, dropout=0.5)
    x, mask = _padded_batch()
    np.testing.assert_array_equal(
        np.asarray(block(x, attention_mask=mask)), np.asarray(block(x, attention_mask=mask))
    )
    trained = np.asarray(block(x, attention_mask=mask, training=True))
    assert np.abs(trained - np.asarray(block(x, attention_mask=mask))).max() > 1e-3


def _block_pair(policy: str, initializer_range: float):
    """A float32 block and a `policy` block with the same (seeded) weights."""
    keras.utils.set_random_seed(11)
    reference = TransformerEncoderBlock(
        HIDDEN, HEADS, intermediate_size=32, initializer_range=initializer_range
    )
    reference.build((None, None, HIDDEN))
    block = TransformerEncoderBlock(
        HIDDEN, HEADS, intermediate_size=32, initializer_range=initializer_range, dtype=policy
    )
    block.build((None, None, HIDDEN))
    block.set_weights(reference.get_weights())
    return reference, block


@pytest.mark.parametrize(
    "policy, tolerance",
    # Post-LN outputs are O(1). Measured max errors: 0.002 (float16), 0.02 (bfloat16).
    [("mixed_float16", 0.01), ("mixed_bfloat16", 0.06)],
)
def test_encoder_block_under_mixed_precision(policy, tolerance):
    x, mask = _padded_batch()
    reference, block = _block_pair(policy, initializer_range=0.02)
    assert all(w.dtype == "float32" for w in block.weights)  # variables stay float32
    out = block(x, attention_mask=mask)
    assert out.dtype == policy.removeprefix("mixed_")
    out = np.asarray(tf.cast(out, tf.float32))
    assert np.abs(out - np.asarray(reference(x, attention_mask=mask))).max() < tolerance


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_survives_huge_scores_and_masks_padding(policy):
    # Large weights and activations: attention scores in the hundreds, far beyond where exp()
    # fits float16, with padding masked by a bias that must not overflow to -inf or NaN.
    x, mask = _padded_batch()
    x = x * 10.0
    _, block = _block_pair(policy, initializer_range=0.3)
    garbage = x.copy()
    garbage[0, 4:] = -x[0, 4:] * 2  # other padding vectors, same scale
    out = np.asarray(tf.cast(block(x, attention_mask=mask), tf.float32))
    changed = np.asarray(tf.cast(block(garbage, attention_mask=mask), tf.float32))
    assert np.isfinite(out).all() and np.isfinite(changed).all()
    np.testing.assert_allclose(out[0, :4], changed[0, :4], atol=1e-6)
    assert np.abs(out[0, 4:] - changed[0, 4:]).max() > 0.1  # the padding rows did change


def test_masked_lm_head_gathers_the_requested_positions():
    embedding = keras.layers.Embedding(30, HIDDEN)
    embedding.build((None, None))
    head = MaskedLMHead(30, HIDDEN, token_embedding=embedding)
    x, _ = _padded_batch()
    positions = np.array([[1, 3, 0], [5, 2, 2]], np.int32)
    logits = np.asarray(head(x, positions))
    assert logits.shape == (2, 3, 30)
    # Reference: the head applied at every position, then indexed.
    everywhere = np.asarray(head(x, np.tile(np.arange(6, dtype=np.int32), (2, 1))))
    expected = np.take_along_axis(everywhere, positions[:, :, None], axis=1)
    np.testing.assert_allclose(logits, expected, atol=1e-5)
    # The decoder is the embedding matrix itself (tied), not a copy.
    assert any(w is embedding.embeddings for w in head.weights)


def test_masked_lm_head_returns_float32_under_mixed_precision():
    embedding = keras.layers.Embedding(30, HIDDEN, dtype="mixed_bfloat16")
    embedding.build((None, None))
    head = MaskedLMHead(30, HIDDEN, token_embedding=embedding, dtype="mixed_bfloat16")
    x, _ = _padded_batch()
    logits = head(tf.cast(x, tf.bfloat16), np.array([[1, 2], [3, 4]], np.int32))
    assert logits.dtype == tf.float32
    assert np.isfinite(np.asarray(logits)).all()


def test_encoder_block_under_xla_matches_eager():
    block = TransformerEncoderBlock(HIDDEN, HEADS, intermediate_size=32)
    x, mask = _padded_batch()
    eager = np.asarray(block(x, attention_mask=mask))
    compiled = tf.function(lambda a, m: block(a, attention_mask=m), jit_compile=True)
    np.testing.assert_allclose(np.asarray(compiled(x, mask)), eager, atol=1e-5)


def _unfused_block(block: TransformerEncoderBlock, x, mask):
    """The block's formula from its sub-layers' own calls (no fused bias + GELU), no dropout."""
    x = block.attention_norm(x + block.attention(x, attention_mask=mask))
    return block.output_norm(x + block.output_dense(block.intermediate(x)))


def test_encoder_block_matches_its_sublayers_formula_forward_and_backward():
    keras.utils.set_random_seed(3)
    block = TransformerEncoderBlock(HIDDEN, HEADS, intermediate_size=32, initializer_range=0.3)
    x, mask = _padded_batch()
    x = tf.constant(x)
    weight = tf.constant(np.random.default_rng(4).normal(size=(2, 6, HIDDEN)), tf.float32)
    results = []
    for fn in (
        lambda t: block(t, attention_mask=mask, training=True),
        lambda t: _unfused_block(block, t, mask),
    ):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = fn(x)
            loss = tf.reduce_sum(y * weight)
        results.append([y, *tape.gradient(loss, [x, *block.trainable_variables])])
    assert len(results[0]) == 2 + len(block.trainable_variables)
    for fused, plain in zip(*results, strict=True):
        np.testing.assert_allclose(np.asarray(fused), np.asarray(plain), atol=2e-5)


def test_bias_gelu_matches_autodiff():
    from nvlm.layers.activations import bias_gelu

    rng = np.random.default_rng(2)
    h = tf.constant(rng.normal(size=(4, 3, 8)) * 2, tf.float32)
    bias = tf.constant(rng.normal(size=8), tf.float32)
    weight = tf.constant(rng.normal(size=(4, 3, 8)), tf.float32)
    results = []
    for fn in (bias_gelu, lambda a, b: tf.nn.gelu(a + b, approximate=False)):
        with tf.GradientTape() as tape:
            tape.watch([h, bias])
            loss = tf.reduce_sum(fn(h, bias) * weight)
        results.append([loss, *tape.gradient(loss, [h, bias])])
    for ours, expected in zip(*results, strict=True):
        np.testing.assert_allclose(np.asarray(ours), np.asarray(expected), rtol=1e-5, atol=1e-5)


def test_block_at_query_positions_is_the_full_block_gathered():
    keras.utils.set_random_seed(5)
    block = TransformerEncoderBlock(HIDDEN, HEADS, intermediate_size=32, initializer_range=0.3)
    x, mask = _padded_batch()
    positions = np.array([[0, 2, 3], [0, 5, 1]], np.int32)
    weight = tf.constant(np.random.default_rng(6).normal(size=(2, 3, HIDDEN)), tf.float32)
    results = []
    for subset in (True, False):
        with tf.GradientTape() as tape:
            if subset:
                y = block(x, attention_mask=mask, query_positions=positions)
            else:
                y = tf.gather(block(x, attention_mask=mask), positions, batch_dims=1)
            loss = tf.reduce_sum(y * weight)
        results.append([y, *tape.gradient(loss, block.trainable_variables)])
    for ours, expected in zip(*results, strict=True):
        np.testing.assert_allclose(np.asarray(ours), np.asarray(expected), atol=2e-5)


def test_unpadded_block_equals_the_padded_one_at_real_tokens():
    keras.utils.set_random_seed(9)
    block = TransformerEncoderBlock(HIDDEN, HEADS, intermediate_size=32, initializer_range=0.3)
    x, mask = _padded_batch()
    x = tf.constant(x)
    real = tf.constant(mask[:, :, None], tf.float32)
    weight = tf.constant(np.random.default_rng(10).normal(size=(2, 6, HIDDEN)), tf.float32)
    results = []
    for unpad in (True, False):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = block(x, attention_mask=mask, training=True, unpad=unpad)
            loss = tf.reduce_sum(y * real * weight)  # heads read real tokens only
        grads = tape.gradient(loss, [x, *block.trainable_variables])
        results.append([y * real, *grads])
    for ours, padded in zip(*results, strict=True):
        np.testing.assert_allclose(np.asarray(ours), np.asarray(padded), atol=2e-5)


def test_unpadding_is_skipped_under_xla():
    # XLA needs static shapes: traced with jit_compile, a block asked to unpad runs padded
    # (its padding rows are computed, not zeros) and compiles.
    block = TransformerEncoderBlock(HIDDEN, HEADS, intermediate_size=32)
    x, mask = _padded_batch()
    compiled = tf.function(lambda a, m: block(a, attention_mask=m, unpad=True), jit_compile=True)
    out = np.asarray(compiled(x, mask))
    np.testing.assert_allclose(out, np.asarray(block(x, attention_mask=mask)), atol=1e-5)
    assert np.abs(out[0, 4:]).max() > 0.1


def test_packing_is_the_real_tokens_then_padding_up_to_a_bucket(monkeypatch):
    from nvlm.layers import transformer_encoder_block as module

    monkeypatch.setattr(module, "MIN_ROW_BUCKET", 4)
    mask = np.array([[1, 1, 1, 0, 0], [1, 0, 0, 0, 0]], np.int32)  # 4 real of 10
    np.testing.assert_array_equal(module._Packing(tf.constant(mask)).rows, [0, 1, 2, 5])
    mask[1, 1] = 1  # 5 real: rounded up to 8 rows, the real ones first
    packing = module._Packing(tf.constant(mask))
    rows = np.asarray(packing.rows)
    np.testing.assert_array_equal(rows[:5], [0, 1, 2, 5, 6])
    assert len(rows) == 8 and len(set(rows)) == 8

    # pack = the rows' gather, unpack = its scatter into zeros; each one's gradient the other.
    flat = tf.constant(np.random.default_rng(0).normal(size=(10, 3)), tf.float32)
    weights = tf.constant(np.random.default_rng(1).normal(size=(8, 3)), tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(flat)
        packed = packing.pack(flat)
        unpacked = packing.unpack(packed * weights)
        loss = tf.reduce_sum(unpacked * unpacked)
    np.testing.assert_array_equal(packed, tf.gather(flat, rows))
    expected = tf.scatter_nd(rows[:, None], packed * weights, [10, 3])
    np.testing.assert_array_equal(unpacked, expected)
    left_out = sorted(set(range(10)) - set(rows))
    np.testing.assert_array_equal(tf.gather(unpacked, left_out), np.zeros((2, 3)))
    expected_grad = tf.scatter_nd(rows[:, None], 2 * packed * weights * weights, [10, 3])
    np.testing.assert_allclose(tape.gradient(loss, flat), expected_grad, rtol=1e-6)


def test_packing_buckets_bound_the_row_shapes():
    from nvlm.layers.transformer_encoder_block import MIN_ROW_BUCKET, ROW_SHAPES, _Packing

    counts = set()
    for real in range(1, 8 * 512 + 1, 7):
        mask = np.zeros((8, 512), np.int32)
        mask.reshape(-1)[:real] = 1
        counts.add(int(_Packing(tf.constant(mask)).rows.shape[0]))
    assert len(counts) <= ROW_SHAPES and max(counts) == 8 * 512
    assert sorted(counts)[:2] == [64, 128]  # 4096 positions: buckets of 4096 / 64
    one_real = np.eye(1, 100, dtype=np.int32)
    assert _Packing(tf.constant(one_real)).rows.shape[0] == MIN_ROW_BUCKET


def test_dropout16_keeps_the_rate_and_the_expectation_and_masks_the_gradient_alike():
    from nvlm.layers.dropout import Dropout, dropout16

    x = tf.random.stateless_normal((64, 96, 128), seed=[3, 4])
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = dropout16(x, 0.1, tf.constant([7, 8]))
    grad = tape.gradient(y, x, output_gradients=tf.ones_like(x))
    kept = np.asarray(grad) != 0  # the gradient of a kept element is the scale, else 0
    assert abs(1 - kept.mean() - 0.1) < 0.002  # 786k draws: 5 standard deviations
    scale = 65536 / (65536 - 6554)  # the exact inverse of the keep probability
    np.testing.assert_allclose(np.asarray(grad)[kept], scale, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(y)[kept], np.asarray(x)[kept] * scale, rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(y)[~kept], 0.0)
    # Same seed, same mask; another seed, another one; two elements per 32-bit draw differ.
    again = dropout16(x, 0.1, tf.constant([7, 8]))
    np.testing.assert_array_equal(again, y)
    other = np.asarray(dropout16(x, 0.1, tf.constant([7, 9]))) != 0
    assert (other != (np.asarray(y) != 0)).mean() > 0.15
    assert (kept[..., 0::2] != kept[..., 1::2]).mean() > 0.15

    layer = Dropout(0.25, seed=5)
    assert layer(x, training=False) is x
    layer_kept = np.asarray(layer(x, training=True)) != 0
    assert abs(1 - layer_kept.mean() - 0.25) < 0.003
    # Odd last axis: Keras's own dropout; the config round-trips to the same class.
    odd = layer(tf.ones((4, 7)), training=True)
    assert set(np.unique(odd)) <= {0.0, np.float32(1 / 0.75)}
    assert type(Dropout.from_config(layer.get_config())) is Dropout
