"""The shared training loop on a toy classifier: exact resume, accumulation equivalence,
fp16 overflow handling, schedules and optimizer exclusions."""

from __future__ import annotations

import dataclasses
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from nvlm.config import TrainConfig
from nvlm.data.examples import ArrayPart, ExampleSource
from nvlm.train.lamb import Lamb
from nvlm.train.precision import set_precision
from nvlm.train.schedule import learning_rate
from nvlm.train.trainer import Trainer, TrainSpec


def _data(n=240, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 16)).astype("float32")
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype("int32")
    return x, y


def _spec(dropout=0.2, poison_at=None, precision="fp32"):
    set_precision(precision)
    keras.utils.set_random_seed(0)
    inp = keras.Input((16,))
    h = keras.layers.Dense(32, activation="relu", name="hidden")(inp)
    h = keras.layers.Dropout(dropout)(h)
    out = keras.layers.Dense(2, name="out")(h)
    model = keras.Model(inp, out)
    x, y = _data()
    poison = np.zeros(len(x), "float32")
    if poison_at is not None:
        poison[poison_at] = 1.0
    src = ExampleSource(
        [
            ArrayPart({"x": x[:100], "y": y[:100], "p": poison[:100]}),
            ArrayPart({"x": x[100:], "y": y[100:], "p": poison[100:]}),
        ],
        seed=3,
        shuffle_buffer=64,
    )

    def loss_fn(m, b, training):
        logits = tf.cast(m(b["x"], training=training), tf.float32)
        per = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=b["y"], logits=logits)
        # A poisoned example has a huge gradient that overflows once multiplied by the loss
        # scale: what an fp16 overflow looks like.
        per = per + b["p"] * 1e38 * tf.reduce_sum(logits, axis=-1)
        pred = tf.argmax(logits, -1, output_type=tf.int32)
        return tf.reduce_mean(per), {"acc": tf.reduce_mean(tf.cast(pred == b["y"], tf.float32))}

    return model, loss_fn, src


def _cfg(**kw):
    base = dict(
        steps=20,
        batch_size=8,
        accumulation=1,
        lr=0.05,
        warmup_steps=2,
        optimizer="lamb",
        checkpoint_every=5,
        keep_checkpoints=2,
        log_every=5,
        seed=1,
    )
    base.update(kw)
    return dataclasses.replace(TrainConfig(), **base)


def _train(run, cfg, *, stop_after=None, **spec_kw):
    model, loss_fn, src = _spec(precision=cfg.precision, **spec_kw)
    spec = TrainSpec(
        model=model,
        loss_fn=loss_fn,
        tokens_per_example=1,
        batches=lambda start: src.micro_batches(start, cfg.batch_size),
    )
    result = Trainer(spec, cfg, run, show_progress=False, stop_after=stop_after).fit()
    weights = np.concatenate([v.numpy().ravel().astype("float64") for v in model.variables])
    return result, weights


def test_killed_run_resumes_to_identical_weights(tmp_path):
    cfg = _cfg(accumulation=2, batch_size=4)
    full, w_full = _train(tmp_path / "a", cfg)
    # Stop at step 13: the last checkpoint is step 10, so steps 11-13 are redone on resume.
    partial, _ = _train(tmp_path / "b", cfg, stop_after=13)
    assert partial.steps == 13
    resumed, w_resumed = _train(tmp_path / "b", cfg)
    assert resumed.resumed_from == 10
    assert resumed.steps == full.steps == 20
    np.testing.assert_array_equal(w_full, w_resumed)
    steps = [
        int(line.split('"step": ')[1].split(",")[0])
        for line in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()
    ]
    assert steps == [5, 10, 15, 20]  # the redone steps are logged once


def test_accumulation_matches_a_larger_micro_batch(tmp_path):
    _, w_acc = _train(tmp_path / "acc", _cfg(accumulation=2, batch_size=4), dropout=0.0)
    _, w_big = _train(tmp_path / "big", _cfg(accumulation=1, batch_size=8), dropout=0.0)
    np.testing.assert_allclose(w_acc, w_big, atol=1e-5)


def test_training_reduces_the_loss(tmp_path):
    result, _ = _train(tmp_path / "run", _cfg(steps=60, lr=0.05))
    assert result.final_metrics["acc"] > 0.85
    assert result.sequences_per_s > 0
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert '"seq_per_s"' in lines[-1] and '"sequences/s"' in lines[-1]
    assert any((tmp_path / "run" / "tb").iterdir())


def test_amp_skips_a_non_finite_step_and_halves_the_scale(tmp_path):
    cfg = _cfg(precision="amp", steps=3, batch_size=8, checkpoint_every=100, log_every=1)
    # Poison the example that the shuffled order puts first in the second step's batch.
    _, _, src = _spec()
    first_of_step2 = src.gather(np.arange(8, 9))["x"][0]
    x, _ = _data()
    poisoned_index = int(np.where((x == first_of_step2).all(axis=1))[0][0])
    result, _ = _train(tmp_path / "amp2", cfg, poison_at=poisoned_index)
    assert result.skipped_steps == 1
    scales = [
        json.loads(line)["loss_scale"]
        for line in (tmp_path / "amp2" / "metrics.jsonl").read_text().splitlines()
    ]
    assert scales == [32768.0, 16384.0, 16384.0]  # 2**15, halved once at the bad step


@pytest.mark.parametrize("precision", ["fp32", "bf16", "amp", "tf32"])
def test_every_precision_runs(tmp_path, precision):
    result, weights = _train(tmp_path / precision, _cfg(precision=precision, steps=4))
    assert result.steps == 4 and np.isfinite(weights).all()
    set_precision("fp32")


def test_xla_compute_step_runs(tmp_path):
    result, weights = _train(
        tmp_path / "xla", _cfg(xla=True, steps=4, accumulation=2, batch_size=4)
    )
    assert result.steps == 4 and np.isfinite(weights).all()


def test_schedules():
    kw = dict(base_lr=1.0, total_steps=100, warmup_steps=10)
    assert float(learning_rate(0, **kw)) == pytest.approx(0.1)
    assert float(learning_rate(9, **kw)) == pytest.approx(1.0)
    assert float(learning_rate(50, **kw, decay_power=1.0)) == pytest.approx(0.5)
    assert float(learning_rate(75, **kw, decay_power=0.5)) == pytest.approx(0.5)
    cos = dict(kw, schedule="cosine", min_lr_ratio=0.1)
    assert float(learning_rate(10, **cos)) == pytest.approx(1.0)
    assert float(learning_rate(55, **cos)) == pytest.approx(0.55)
    assert float(learning_rate(100, **cos)) == pytest.approx(0.1)


def test_lamb_excludes_layernorm_and_bias_from_decay_and_trust_ratio():
    set_precision("fp32")
    dense = keras.layers.Dense(4, name="proj")
    norm = keras.layers.LayerNormalization(name="attention_layer_norm")
    dense.build((None, 4))
    norm.build((None, 4))
    variables = [dense.kernel, dense.bias, norm.gamma, norm.beta]
    opt = Lamb(variables, weight_decay=0.5)
    assert opt.decay_mask == [True, False, False, False]
    before = [v.numpy().copy() for v in variables]
    grads = [tf.zeros(v.shape) for v in variables]
    opt.apply(grads, lr=0.1)
    # Zero gradients: only weight decay moves the kernel; excluded variables stay put.
    assert not np.allclose(variables[0].numpy(), before[0])
    for v, b in zip(variables[1:], before[1:], strict=True):
        np.testing.assert_array_equal(v.numpy(), b)


def test_example_order_is_the_same_for_any_number_of_ranks():
    x, y = _data()
    src = ExampleSource([ArrayPart({"x": x})], seed=5, shuffle_buffer=50)
    whole = next(src.micro_batches(16, 8, rank=0, world=1))["x"]
    r0 = next(src.micro_batches(16, 4, rank=0, world=2))["x"]
    r1 = next(src.micro_batches(16, 4, rank=1, world=2))["x"]
    np.testing.assert_array_equal(whole[0::2], r0)
    np.testing.assert_array_equal(whole[1::2], r1)
    # One epoch visits every example exactly once.
    seen = src.gather(np.arange(len(src)))["x"]
    assert len({row.tobytes() for row in seen}) == len(x)
