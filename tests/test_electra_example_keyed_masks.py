"""ELECTRA's corruption is a function of each example (issue 18): with `example_positions`
the masks and samples of a row do not depend on the batch it sits in (1 rank x 8 rows ==
2 x 4 == 1 x 4 with accumulation 2), change with the position (next epoch), keep the
recipe's statistics, and agree eager and under XLA."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from test_electra_model import random_batch

from nvlm import resolve as resolve_mod
from nvlm.data.examples import ArrayPart, ExampleSource
from nvlm.models.electra.build import build
from nvlm.models.electra.replaced_tokens import (
    MASK,
    SAMPLE,
    SELECT,
    ExampleKeyedDraws,
    _mix32,
    sample_tokens,
)

DRAWN = ("masked_lm_positions", "masked_lm_weights", "generator_input_ids", "sampled_ids",
         "discriminator_input_ids", "rtd_labels")  # fmt: skip
MASK_ID = 4  # the [MASK] id of the tiny config (random_batch: 2 = [CLS], 3 = [SEP])


@pytest.fixture(scope="module")
def model():
    keras.mixed_precision.set_global_policy("float32")
    cfg = resolve_mod.resolve(
        "electra", "pretrain_phase1",
        flags={"model.size": "tiny", "model.vocab_size": 96, "data.max_predictions": 20,
               "data.seq_len": 64, "train.seed": 3},
    ).config  # fmt: skip
    return build(cfg, "pretrain")


def drawn(model, batch, rows, positions) -> dict[str, np.ndarray]:
    inputs = {k: v[rows] for k, v in batch.items()}
    inputs["example_positions"] = np.asarray(positions, np.int64)[rows]
    out = model(inputs, training=False)
    return {k: np.asarray(out[k]) for k in DRAWN}


def test_a_row_is_corrupted_the_same_whatever_batch_carries_it(model):
    batch = random_batch(np.random.default_rng(0), batch=8, seq=64)
    positions = np.arange(1000, 1008)
    whole = drawn(model, batch, np.arange(8), positions)
    for split in ([[0, 1, 2, 3], [4, 5, 6, 7]],  # 1 rank, accumulation 2
                  [[0, 2, 4, 6], [1, 3, 5, 7]]):  # 2 ranks  # fmt: skip
        parts = [drawn(model, batch, np.array(rows), positions) for rows in split]
        order = np.argsort(np.concatenate(split))
        for key in DRAWN:
            joined = np.concatenate([p[key] for p in parts])[order]
            np.testing.assert_array_equal(joined, whole[key], err_msg=f"{split} {key}")
    # The seed generator (whose state differs by rank) plays no part: a second call agrees.
    again = drawn(model, batch, np.arange(8), positions)
    for key in DRAWN:
        np.testing.assert_array_equal(again[key], whole[key], err_msg=key)


def test_the_same_example_at_its_next_epoch_gets_other_masks(model):
    batch = random_batch(np.random.default_rng(1), batch=8, seq=64)
    first = drawn(model, batch, np.arange(8), np.arange(8))
    later = drawn(model, batch, np.arange(8), np.arange(8) + 50)  # N = 50: epoch 1
    differ = [not np.array_equal(first["masked_lm_positions"][r], later["masked_lm_positions"][r])
              for r in range(8)]  # fmt: skip
    assert all(differ)
    # Positions past 2**32 (long runs) are keyed by all their bits.
    high = drawn(model, batch, np.arange(8), np.arange(8) + (1 << 32))
    assert not np.array_equal(high["masked_lm_positions"], first["masked_lm_positions"])


def test_masking_statistics_are_the_recipes(model):
    batch = random_batch(np.random.default_rng(2), batch=256, seq=64)
    out = drawn(model, batch, np.arange(256), np.arange(256) * 7 + 11)
    ids, mask = batch["input_ids"], batch["input_mask"]
    positions, weights = out["masked_lm_positions"], out["masked_lm_weights"]
    selected = np.zeros(ids.shape, bool)
    for row in range(len(ids)):
        chosen = positions[row][weights[row] > 0]
        candidates = mask[row].astype(bool) & (ids[row] != 2) & (ids[row] != 3)
        assert len(set(chosen.tolist())) == len(chosen) and candidates[chosen].all()
        assert len(chosen) == max(1, min(20, round(0.15 * candidates.sum())))
        selected[row, chosen] = True
    masked = out["generator_input_ids"] == MASK_ID
    assert not (masked & ~selected).any()
    assert abs(masked.sum() / selected.sum() - 0.85) < 0.03  # ~2000 draws: 4 sigma


def test_selection_is_uniform_over_the_candidates(model):
    # 2000 copies of one sequence at different positions: each of its 62 candidates is
    # chosen in round(0.15 x 62) / 62 = 9/62 of them.
    rows = 2000
    ids = np.full((rows, 64), 7, np.int32)
    ids[:, [0, 63]] = [2, 3]
    inputs = {"input_ids": ids, "input_mask": np.ones_like(ids),
              "segment_ids": np.zeros_like(ids)}  # fmt: skip
    out = drawn(model, inputs, np.arange(rows), np.arange(rows))
    counts = np.zeros(64)
    np.add.at(counts, out["masked_lm_positions"][out["masked_lm_weights"] > 0], 1)
    assert counts[0] == counts[63] == 0
    expected = rows * 9 / 62
    chi2 = (((counts[1:63] - expected) ** 2) / expected).sum()
    assert chi2 < 120  # 61 degrees of freedom: mean 61, far beyond the 0.9999 quantile (~110)


def test_keyed_uniforms_are_uniform_and_independent_across_kinds():
    draws = ExampleKeyedDraws(3, tf.range(4000, dtype=tf.int64))
    u = {kind: np.asarray(draws.uniform(kind, 50)).ravel() for kind in (SELECT, MASK, SAMPLE)}
    for values in u.values():
        assert 0.0 < values.min() and values.max() < 1.0
        hist = np.histogram(values, bins=20, range=(0, 1))[0]
        expected = len(values) / 20
        assert (((hist - expected) ** 2) / expected).sum() < 60  # 19 dof: mean 19
    assert abs(np.corrcoef(u[SELECT], u[SAMPLE])[0, 1]) < 0.01
    assert abs(np.corrcoef(u[MASK], u[SAMPLE])[0, 1]) < 0.01
    # Another run seed: other draws.
    other = np.asarray(ExampleKeyedDraws(4, tf.range(4000, dtype=tf.int64)).uniform(SELECT, 50))
    assert abs(np.corrcoef(other.ravel(), u[SELECT])[0, 1]) < 0.01


def test_the_int64_hash_is_lowbias32():
    def reference(x: int) -> int:  # the published 32-bit function, in Python integers
        x ^= x >> 16
        x = (x * 0x7FEB352D) & 0xFFFFFFFF
        x ^= x >> 15
        x = (x * 0x846CA68B) & 0xFFFFFFFF
        return x ^ (x >> 16)

    words = [0, 1, 2, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000, 0xDEADBEEF, 0xFFFFFFFF]
    got = np.asarray(_mix32(tf.constant(words, tf.int64))).tolist()
    assert got == [reference(w) for w in words]


@pytest.mark.parametrize("disallow_correct", [False, True])
def test_sampled_tokens_follow_the_softmax(disallow_correct):
    probs = np.array([0.4, 0.3, 0.15, 0.1, 0.05])
    rows, slots = 2000, 10
    logits = np.broadcast_to(np.log(probs) * 2.0, (rows, slots, 5)).astype(np.float32)
    original = np.zeros((rows, slots), np.int32)
    draws = ExampleKeyedDraws(7, tf.range(rows, dtype=tf.int64))
    sampled = np.asarray(sample_tokens(logits, original, temperature=2.0,
                                       disallow_correct=disallow_correct, seed=None,
                                       draws=draws))  # fmt: skip
    want = probs.copy()
    if disallow_correct:
        want[0] = 0.0
        want /= want.sum()
    freq = np.bincount(sampled.ravel(), minlength=5) / sampled.size
    if disallow_correct:
        assert freq[0] == 0.0
    np.testing.assert_allclose(freq, want, atol=0.015)  # 20000 draws: sd <= 0.0035


def test_draws_agree_eager_and_under_xla(model):
    batch = random_batch(np.random.default_rng(3), batch=8, seq=64)
    inputs = {k: tf.constant(v) for k, v in batch.items()}
    inputs["example_positions"] = tf.constant(np.arange(8, dtype=np.int64) + 123)
    eager = model(inputs, training=False)

    @tf.function(jit_compile=True)
    def compiled(x):
        return model(x, training=False)

    xla = compiled(inputs)
    for key in DRAWN:
        np.testing.assert_array_equal(np.asarray(xla[key]), np.asarray(eager[key]), err_msg=key)


def test_micro_batches_carry_global_positions_the_same_for_any_layout():
    arrays = {"input_ids": np.arange(40, dtype=np.int32)[:, None] * np.ones((1, 3), np.int32)}
    src = ExampleSource([ArrayPart(arrays)], seed=5, shuffle_buffer=16)
    one = next(src.micro_batches(8, 8, positions=True))
    ranks = [next(src.micro_batches(8, 4, rank=r, world=2, positions=True)) for r in (0, 1)]
    steps = src.micro_batches(8, 4, positions=True)
    accumulated = [next(steps), next(steps)]
    assert one["example_positions"].dtype == np.int64
    assert one["example_positions"].tolist() == list(range(8, 16))
    assert ranks[0]["example_positions"].tolist() == [8, 10, 12, 14]
    for parts in (ranks, accumulated):
        by_position = {int(p): row.tolist() for b in parts
                       for p, row in zip(b["example_positions"], b["input_ids"], strict=True)}  # fmt: skip
        assert by_position == {int(p): row.tolist() for p, row in
                               zip(one["example_positions"], one["input_ids"], strict=True)}  # fmt: skip
    assert "example_positions" not in next(src.micro_batches(0, 8))  # only when asked
    prefetched = next(src.prefetched_batches(48, 4, rank=1, world=2, positions=True))
    assert prefetched["example_positions"].dtype == tf.int64
    assert prefetched["example_positions"].numpy().tolist() == [49, 51, 53, 55]  # epoch 1
