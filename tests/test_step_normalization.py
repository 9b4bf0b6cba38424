"""Token-weighted losses (train.loss_normalization, nvlm.train.losses): a step's result does
not depend on how its examples are split over micro-batches and ranks.

- the trainer's step gradient is that of the mean over every target of the step
  (step_tokens), or the average of the micro-batch means (micro_batch, the reference recipes),
  checked against gradients computed by hand on a toy token model with varying counts;
- `nvlm pretrain` 1 x 2b == 1 x b with accumulation 2 (in this process), and
  == 2 ranks x b (horovodrun, mpirun: tests marked horovod), within 1e-5 after 6 LAMB steps,
  for BERT and ELECTRA on shards whose examples have different numbers of real and masked
  tokens, and for Transformer-XL (uniform counts: the plumbing);
- on those shards the micro_batch mode does differ (the comparison can fail).
"""

from __future__ import annotations

import dataclasses
import json
import shutil

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import checkpoint_values, invoke, json_of, ok

from nvlm.config import TrainConfig
from nvlm.data.examples import ArrayPart, ExampleSource
from nvlm.train.losses import Term
from nvlm.train.trainer import Trainer, TrainSpec

STEPS = 6
MICRO = 4  # per micro-batch of the split runs; the whole run takes 2 x MICRO per step

# --- the trainer, by hand ------------------------------------------------------------------


def _token_data(n=16, length=6, seed=0):
    """n sequences of `length` positions of 3 features, each with its own number of real
    targets (1 to `length`): what masked tokens look like to a loss."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, length, 3)).astype("float32")
    y = rng.integers(0, 4, size=(n, length)).astype("int32")
    real = rng.integers(1, length + 1, size=n)
    weights = (np.arange(length)[None, :] < real[:, None]).astype("float32")
    return {"x": x, "y": y, "w": weights}


def _token_model():
    keras.utils.set_random_seed(0)
    inp = keras.Input((None, 3))
    out = keras.layers.Dense(4, name="out")(keras.layers.Dense(8, activation="tanh")(inp))
    return keras.Model(inp, out)


def _terms(model, batch):
    logits = tf.cast(model(batch["x"]), tf.float32)
    xent = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=batch["y"], logits=logits)
    per_row = tf.reduce_sum(xent * batch["w"], axis=1)
    rows = tf.cast(tf.shape(batch["x"])[0], tf.float32)
    # Two terms with different counts and a weight, as BERT's MLM + NSP or ELECTRA's 1 + 50.
    return {
        "tok_loss": Term(tf.reduce_sum(xent * batch["w"]), tf.reduce_sum(batch["w"])),
        "row_loss": Term(tf.reduce_sum(per_row) * 0.1, rows, weight=2.0),
    }


def _captured_step_gradients(tmp_path, mode: str, data: dict, *, accumulation: int):
    """The gradients the optimizer receives in the first step (clip off: factor 1)."""
    model = _token_model()
    src = ExampleSource([ArrayPart(data)], seed=0, shuffle=False)
    spec = TrainSpec(
        model=model,
        loss_fn=lambda m, b, training: (_terms(m, b), {}),
        counts=lambda b: {
            "tok_loss": tf.reduce_sum(b["w"]),
            "row_loss": tf.cast(tf.shape(b["x"])[0], tf.float32),
        },
        batches=lambda start: src.micro_batches(start, len(data["x"]) // accumulation),
        tokens_per_example=6,
    )
    cfg = dataclasses.replace(
        TrainConfig(), steps=1, batch_size=len(data["x"]) // accumulation,
        accumulation=accumulation, clip_norm=0.0, loss_normalization=mode,
    )  # fmt: skip
    trainer = Trainer(spec, cfg, tmp_path / mode, show_progress=False)
    seen = {}
    apply = trainer.optimizer.apply

    def capture(grads, lr, grad_scale):
        seen["grads"] = [np.asarray(g) * float(grad_scale) for g in grads]
        return apply(grads, lr, grad_scale=grad_scale)

    trainer.optimizer.apply = capture
    tf.config.run_functions_eagerly(True)
    try:
        micro, *_ = trainer.step(iter(spec.batches(0)))
    finally:
        tf.config.run_functions_eagerly(False)
    return seen["grads"], micro, model


def _gradients_by_hand(model_fn, objective):
    model = model_fn()
    with tf.GradientTape() as tape:
        value = objective(model)
    return [np.asarray(g) for g in tape.gradient(value, model.trainable_variables)], float(value)


def test_step_tokens_gradient_is_the_mean_over_every_target_of_the_step(tmp_path):
    data = _token_data()
    grads, micro, _ = _captured_step_gradients(tmp_path, "step_tokens", data, accumulation=2)

    def whole_step_mean(model):
        t = _terms(model, data)
        return t["tok_loss"].total / t["tok_loss"].count + 2.0 * t["row_loss"].total / 16.0

    expected, loss = _gradients_by_hand(_token_model, whole_step_mean)
    for got, want in zip(grads, expected, strict=True):
        np.testing.assert_allclose(got, want, atol=1e-6, rtol=1e-5)
    # The logged loss is the step's mean per target (the log averages the micro-batches).
    assert np.mean([m["loss"] for m in micro]) == pytest.approx(loss, rel=1e-5)


def test_micro_batch_gradient_is_the_average_of_the_micro_batch_means(tmp_path):
    data = _token_data()
    grads, micro, _ = _captured_step_gradients(tmp_path, "micro_batch", data, accumulation=2)
    halves = [{k: v[i * 8 : (i + 1) * 8] for k, v in data.items()} for i in range(2)]

    def mean_of_means(model):
        values = []
        for half in halves:
            t = _terms(model, half)
            values.append(t["tok_loss"].total / t["tok_loss"].count + 2.0 * t["row_loss"].total / 8)
        return tf.add_n(values) / 2.0

    expected, loss = _gradients_by_hand(_token_model, mean_of_means)
    for got, want in zip(grads, expected, strict=True):
        np.testing.assert_allclose(got, want, atol=1e-6, rtol=1e-5)
    assert np.mean([m["loss"] for m in micro]) == pytest.approx(loss, rel=1e-5)
    # ... which is not the mean over the step's targets on this data.
    step_grads, _, _ = _captured_step_gradients(tmp_path, "step_tokens", data, accumulation=2)
    assert max(np.abs(a - b).max() for a, b in zip(grads, step_grads, strict=True)) > 1e-3


def test_a_loss_of_terms_without_counts_is_a_programming_error(tmp_path):
    data = _token_data()
    src = ExampleSource([ArrayPart(data)], seed=0, shuffle=False)
    spec = TrainSpec(
        model=_token_model(), loss_fn=lambda m, b, training: (_terms(m, b), {}),
        batches=lambda start: src.micro_batches(start, 8), tokens_per_example=6,
    )  # fmt: skip
    cfg = dataclasses.replace(TrainConfig(), steps=1, batch_size=8)
    trainer = Trainer(spec, cfg, tmp_path / "run", show_progress=False)
    with pytest.raises(ValueError, match="TrainSpec.counts"):
        trainer.step(iter(spec.batches(0)))


# --- nvlm pretrain on shards of varying lengths ----------------------------------------------


@pytest.fixture(scope="module")
def varied_shards(demo_corpus, demo_vocab, tmp_path_factory):
    """BERT and ELECTRA shards of `demo_corpus` with many short sequences (short_seq_prob 0.5):
    examples with different numbers of real tokens, hence of masked tokens."""
    root = tmp_path_factory.mktemp("varied-shards")
    common = ["--input", demo_corpus, "--vocab", demo_vocab, "--seq-len", 48, "--shards", 2,
              "--short-seq-prob", 0.5, "--dupe-factor", 1, "--workers", 1]  # fmt: skip
    ok(invoke("data", "pretraining", "--model", "bert", "--out", root / "bert",
              "--max-predictions", 8, *common))  # fmt: skip
    ok(invoke("data", "pretraining", "--model", "electra", "--out", root / "electra", *common))
    return root


def _tiny(model: str, data, out, *, batch: int, accumulation: int, mode: str = "step_tokens"):
    return [
        "pretrain", "--model", model, "--preset", "cpu-fp32", "--data", str(data),
        "--out", str(out), "--steps", str(STEPS), "--set", "model.size=tiny",
        "--set", "model.dropout=0", "--set", "model.attention_dropout=0",
        "--set", f"train.batch_size={batch}", "--set", f"train.accumulation={accumulation}",
        "--set", "train.warmup_steps=2", "--set", "train.checkpoint_every=3",
        "--set", "train.log_every=1", "--set", f"train.loss_normalization={mode}",
        "--set", "data.max_predictions=8",
    ]  # fmt: skip


def _model_weights(run) -> dict[str, np.ndarray]:
    return {k: v for k, v in checkpoint_values(run, "state/").items() if "/model_vars/" in k}


def _max_difference(a, b) -> float:
    wa, wb = _model_weights(a), _model_weights(b)
    assert wa.keys() == wb.keys() and len(wa) > 10
    return max(float(np.abs(wa[k] - wb[k]).max()) for k in wa)


def _losses(run) -> list[float]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["loss"] for line in lines if "loss" in json.loads(line)]


def test_the_bert_shards_have_examples_with_different_numbers_of_masked_tokens(varied_shards):
    # The precondition of the comparisons below: with equal counts both modes agree anyway.
    counts = []
    for path in sorted((varied_shards / "bert").glob("*.hdf5")):
        with h5py.File(path) as f:
            counts += list((f["masked_lm_positions"][:] != 0).sum(axis=1))
    assert len(set(counts)) >= 4, sorted(set(counts))


@pytest.mark.parametrize("model", ["bert", "electra"])
def test_accumulation_trains_as_one_micro_batch_of_the_whole_step(model, varied_shards, tmp_path):
    data = varied_shards / model
    ok(invoke(*_tiny(model, data, tmp_path / "whole", batch=2 * MICRO, accumulation=1)))
    ok(invoke(*_tiny(model, data, tmp_path / "split", batch=MICRO, accumulation=2)))
    assert _max_difference(tmp_path / "whole", tmp_path / "split") < 1e-5
    np.testing.assert_allclose(
        _losses(tmp_path / "split"), _losses(tmp_path / "whole"), rtol=1e-5, atol=1e-6
    )


@pytest.mark.slow
def test_the_micro_batch_mode_averages_means_and_so_differs(varied_shards, tmp_path):
    data = varied_shards / "bert"
    for name, batch, accumulation in (("whole", 2 * MICRO, 1), ("split", MICRO, 2)):
        ok(invoke(*_tiny("bert", data, tmp_path / name, batch=batch, accumulation=accumulation,
                         mode="micro_batch")))  # fmt: skip
    assert _max_difference(tmp_path / "whole", tmp_path / "split") > 1e-4


def test_transformer_xl_accumulation_trains_as_one_micro_batch(txl_corpus, tmp_path):
    def run(out, batch, accumulation):
        return json_of(invoke(
            "pretrain", "--model", "transformer-xl", "--data", txl_corpus, "--out", out,
            "--steps", STEPS, "--preset", "cpu-fp32", "--set", "model.size=tiny",
            "--set", "model.dropout=0", "--set", "model.attention_dropout=0",
            "--set", "data.seq_len=8", "--set", "model.mem_len=8",
            "--set", f"train.batch_size={batch}", "--set", f"train.accumulation={accumulation}",
            "--json"))  # fmt: skip

    run(tmp_path / "whole", 2 * MICRO, 1)
    run(tmp_path / "split", MICRO, 2)
    assert _max_difference(tmp_path / "whole", tmp_path / "split") < 1e-5


# --- 2 ranks (horovodrun, mpirun) ------------------------------------------------------------


def _launchers():
    hvd = pytest.importorskip("horovod.tensorflow", reason="Horovod is built by `make horovod`")
    return hvd


@pytest.mark.slow
@pytest.mark.horovod
@pytest.mark.parametrize(
    ("model", "launcher"),
    # Both models and both launchers in two runs (the launchers' own equivalence is
    # tests/test_distributed.py's; the counting is the same code on either).
    [("bert", "horovodrun"), ("electra", "mpirun")],
)
def test_two_ranks_train_as_one_process(model, launcher, varied_shards, tmp_path):
    hvd = _launchers()
    if launcher == "mpirun" and (shutil.which("mpirun") is None or not hvd.mpi_built()):
        pytest.skip("needs mpirun and Horovod's MPI controller")
    data = varied_shards / model
    ok(invoke(*_tiny(model, data, tmp_path / "one", batch=2 * MICRO, accumulation=1)))
    two = _tiny(model, data, tmp_path / "two", batch=MICRO, accumulation=1)
    summary = json_of(invoke(*two, "--gpus", 2, "--launcher", launcher, "--json"))
    assert summary["processes"] == 2 and summary["global_batch"] == 2 * MICRO
    assert _max_difference(tmp_path / "one", tmp_path / "two") < 1e-5
    # The logged loss of 2 ranks is the step's mean over all its targets, as 1 process logs.
    np.testing.assert_allclose(
        _losses(tmp_path / "two"), _losses(tmp_path / "one"), rtol=1e-5, atol=1e-6
    )
