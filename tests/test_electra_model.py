"""ELECTRA against Hugging Face `transformers` (committed fixtures, no torch needed), and the
replaced-token-detection mechanics: labels, masking statistics, padding, determinism."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from nvlm import resolve as resolve_mod
from nvlm.models.electra.pretraining_losses import pretraining_losses
from nvlm.models.electra.replaced_tokens import MASK_REPLACE_PROB
from nvlm.plugins.electra.init import init_model_values, load_into
from nvlm.plugins.electra.plugin import ElectraPlugin

FIXTURES = Path(__file__).parent / "fixtures"
PAIR = FIXTURES / "electra_tiny_hf"
TOL = 1e-4  # absolute, against HF's float32 PyTorch outputs


@pytest.fixture(scope="module")
def expected() -> dict[str, np.ndarray]:
    return dict(np.load(FIXTURES / "electra_tiny_expected.npz"))


def build(src, task: str, **extra):
    """A model for `task` configured from `src` (as `--init` does), weights loaded."""
    keras.mixed_precision.set_global_policy("float32")
    flags = {**init_model_values(src), "data.seq_len": 32, **extra}
    cfg = resolve_mod.resolve("electra", "squad" if task == "squad" else "pretrain_phase1",
                             flags=flags).config  # fmt: skip
    model = ElectraPlugin().build(cfg, task)
    warnings = load_into(model, cfg, src, task)
    return cfg, model, warnings


def inputs_of(expected) -> dict:
    return {k: tf.constant(expected[k]) for k in ("input_ids", "input_mask", "segment_ids")}


def test_discriminator_matches_hugging_face(expected):
    _, model, warnings = build(PAIR / "discriminator", "features")
    assert any("ignored its discriminator head" in w for w in warnings)
    out = model(inputs_of(expected), training=False)
    for layer, hf in enumerate(expected["disc_hidden_states"]):
        np.testing.assert_allclose(out["hidden_states"][layer], hf, atol=TOL, err_msg=f"{layer}")
    np.testing.assert_allclose(out["sequence_output"], expected["disc_hidden_states"][-1], atol=TOL)


def test_pair_matches_hugging_face_generator_and_discriminator(expected):
    cfg, model, warnings = build(PAIR, "pretrain", **{"data.max_predictions": 4})
    assert warnings == []
    assert cfg.model.generator_hidden_fraction == 0.5 and cfg.model.embedding_size == 24
    batch = inputs_of(expected)
    disc = model.discriminator(batch, training=False)
    np.testing.assert_allclose(
        model.discriminator_head(disc["sequence_output"]), expected["disc_logits"], atol=TOL
    )
    gen = model.generator(batch, training=False)
    for layer, hf in enumerate(expected["gen_hidden_states"]):
        np.testing.assert_allclose(gen["hidden_states"][layer], hf, atol=TOL, err_msg=f"{layer}")
    logits = model.generator_head(
        gen["sequence_output"], tf.constant(expected["masked_lm_positions"])
    )
    np.testing.assert_allclose(logits, expected["gen_mlm_logits"], atol=TOL)


# --- replaced token detection -------------------------------------------------------------


@pytest.fixture(scope="module")
def pretrainer():
    keras.mixed_precision.set_global_policy("float32")
    cfg = resolve_mod.resolve(
        "electra", "pretrain_phase1",
        flags={"model.size": "tiny", "model.vocab_size": 96, "data.max_predictions": 40,
               "data.seq_len": 128, "train.seed": 3},
    ).config  # fmt: skip
    return cfg, ElectraPlugin().build(cfg, "pretrain")


def random_batch(rng, batch=64, seq=128, vocab=96):
    """[CLS] tokens [SEP] tokens [SEP] with random lengths and padding (ids 5.. are words)."""
    ids = np.zeros((batch, seq), np.int32)
    mask = np.zeros_like(ids)
    segments = np.zeros_like(ids)
    for row in range(batch):
        n = int(rng.integers(20, seq + 1))
        ids[row, :n] = rng.integers(5, vocab, n)
        cut = n // 2
        ids[row, [0, cut, n - 1]] = [2, 3, 3]
        mask[row, :n] = 1
        segments[row, cut + 1 : n] = 1
    return {"input_ids": ids, "input_mask": mask, "segment_ids": segments}


def test_rtd_labels_masking_statistics_and_padding(pretrainer):
    cfg, model = pretrainer
    rng = np.random.default_rng(0)
    batch = random_batch(rng)
    out = {k: np.asarray(v) for k, v in model(batch, training=False).items()}
    ids, mask = batch["input_ids"], batch["input_mask"]
    positions, weights = out["masked_lm_positions"], out["masked_lm_weights"]
    selected = np.zeros_like(ids, dtype=bool)
    for row in range(len(ids)):
        chosen = positions[row][weights[row] > 0]
        assert len(set(chosen.tolist())) == len(chosen)  # without replacement
        selected[row, chosen] = True
        # Only real, non-special tokens are selected, round(15%) of them per sequence.
        candidates = mask[row].astype(bool) & (ids[row] != 2) & (ids[row] != 3)
        assert candidates[chosen].all()
        assert len(chosen) == max(1, min(40, round(0.15 * candidates.sum())))
    # The generator saw [MASK] at ~85% of the selected positions, the original elsewhere.
    gen_ids = out["generator_input_ids"]
    masked = gen_ids == 4
    assert not (masked & ~selected).any()
    assert (gen_ids[~masked] == ids[~masked]).all()
    assert abs(masked.sum() / selected.sum() - MASK_REPLACE_PROB) < 0.04
    # The discriminator's input: samples at the selected positions, originals elsewhere.
    fake = out["discriminator_input_ids"]
    assert (fake[~selected] == ids[~selected]).all()
    np.testing.assert_array_equal(np.take_along_axis(fake, positions, 1)[weights > 0],
                                  out["sampled_ids"][weights > 0])  # fmt: skip
    # Labels: exactly "sampled token != original token" at selected positions, 0 elsewhere.
    np.testing.assert_array_equal(out["rtd_labels"], (selected & (fake != ids)).astype(np.float32))
    assert out["rtd_labels"][mask == 0].sum() == 0


def test_padding_never_contributes_to_a_loss(pretrainer):
    cfg, model = pretrainer
    batch = random_batch(np.random.default_rng(1), batch=4)
    out = model(batch, training=False)
    # Garbage logits on padding (and on unused prediction slots) change nothing.
    pad = 1.0 - out["input_mask"]
    noisy = dict(out, rtd_logits=out["rtd_logits"] + 1e3 * pad)
    slots = 1.0 - out["masked_lm_weights"]
    noisy["mlm_logits"] = out["mlm_logits"] + 1e3 * slots[:, :, None] * tf.random.normal(
        tf.shape(out["mlm_logits"])
    )
    clean, dirty = pretraining_losses(out), pretraining_losses(noisy)
    for key in ("loss", "gen_loss", "disc_loss", "disc_acc", "gen_acc"):
        np.testing.assert_allclose(float(dirty[key]), float(clean[key]), rtol=1e-6, err_msg=key)


def test_no_gradient_flows_from_the_discriminator_into_the_sampling(pretrainer):
    cfg, model = pretrainer
    batch = random_batch(np.random.default_rng(2), batch=4)
    with tf.GradientTape() as tape:
        out = model(batch, training=False)
        disc_loss = pretraining_losses(out)["disc_loss"]
    grads = tape.gradient(disc_loss, model.trainable_variables)
    shared = {id(v) for v in model.discriminator.trainable_variables}
    generator_only = {
        id(v)
        for v in [*model.generator.trainable_variables, *model.generator_head.trainable_variables]
        if id(v) not in shared
    }
    assert generator_only
    for v, g in zip(model.trainable_variables, grads, strict=True):
        if id(v) in generator_only:
            assert g is None or not np.any(tf.convert_to_tensor(g).numpy()), v.path
        elif v.path.startswith("discriminator_head"):
            assert g is not None and np.any(tf.convert_to_tensor(g).numpy()), v.path


def test_draws_are_deterministic_and_follow_the_seed_state(pretrainer):
    cfg, model = pretrainer
    batch = random_batch(np.random.default_rng(4), batch=8)
    state = model.seed_generator.state
    start = np.asarray(state.value)
    first = model(batch, training=False)["discriminator_input_ids"]
    second = model(batch, training=False)["discriminator_input_ids"]
    assert not np.array_equal(first, second)  # a new draw each step
    state.assign(start)  # what a restored checkpoint does
    np.testing.assert_array_equal(model(batch, training=False)["discriminator_input_ids"], first)


def test_disallow_correct_never_samples_the_original():
    keras.mixed_precision.set_global_policy("float32")
    cfg = resolve_mod.resolve(
        "electra", "pretrain_phase1",
        flags={"model.size": "tiny", "model.vocab_size": 8, "model.disallow_correct": True,
               "data.max_predictions": 20, "data.seq_len": 32},
    ).config  # fmt: skip
    model = ElectraPlugin().build(cfg, "pretrain")
    rng = np.random.default_rng(5)
    batch = random_batch(rng, batch=16, seq=32, vocab=8)  # 3 word ids: many draws hit them
    out = pretraining_losses(model(batch, training=False))
    assert float(out["sampled_eq_original"]) == 0.0
