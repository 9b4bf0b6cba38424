"""A Google TF1 `run_classifier.py` checkpoint (`output_weights` [num_labels, hidden] used with
transpose_b, `output_bias`) as `--init`: its head is loaded, so the classifier's logits are the
pooled [CLS] output times the transposed weights plus the bias."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import tensorflow as tf
import yaml
from helpers import invoke, ok

from nvlm import registry
from nvlm.tasks.inference import load_model

GOOGLE = Path(__file__).parent / "fixtures" / "bert_tiny_google"


def google_classifier(directory: Path, num_labels: int = 3) -> tuple[Path, np.ndarray, np.ndarray]:
    """The tiny Google checkpoint as run_classifier.py saves one, by a TF1 Saver: the encoder
    (bert/*) and the classification layer; the pretraining heads (cls/*) are not in its graph."""
    reader = tf.train.load_checkpoint(str(GOOGLE / "bert_model.ckpt"))
    shapes = {n: s for n, s in reader.get_variable_to_shape_map().items() if n.startswith("bert/")}
    hidden = shapes["bert/pooler/dense/bias"][0]
    rng = np.random.default_rng(0)
    weights = rng.normal(0, 0.2, (num_labels, hidden)).astype(np.float32)
    bias = rng.normal(0, 0.2, (num_labels,)).astype(np.float32)
    directory.mkdir(parents=True)
    with tf.Graph().as_default():
        tensors = [tf.compat.v1.Variable(reader.get_tensor(n), name=n) for n in shapes]
        tensors += [tf.compat.v1.Variable(weights, name="output_weights"),
                    tf.compat.v1.Variable(bias, name="output_bias")]  # fmt: skip
        saver = tf.compat.v1.train.Saver(tensors)
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            saver.save(session, str(directory / "bert_model.ckpt"), write_meta_graph=False)
    for name in ("bert_config.json", "vocab.txt"):
        shutil.copy(GOOGLE / name, directory / name)
    return directory / "bert_model.ckpt", weights, bias


def test_a_google_classifier_checkpoint_loads_its_head(tmp_path):
    ckpt, weights, bias = google_classifier(tmp_path / "google")
    run = tmp_path / "run"
    ok(invoke("convert", ckpt, run, "--to", "nvlm"))
    model_keys = yaml.safe_load((run / "config.yaml").read_text())["model"]
    assert model_keys["num_labels"] == 3
    plugin = registry.get("bert")
    ids = tf.constant([[2, 10, 11, 12, 3, 0], [2, 20, 21, 3, 0, 0]], tf.int32)
    batch = {"input_ids": ids, "input_mask": tf.cast(ids > 0, tf.int32),
             "segment_ids": tf.zeros_like(ids)}  # fmt: skip
    flags = {"train.precision": "fp32"}
    _, classifier = load_model(plugin, str(ckpt), "classify", flags=flags)
    _, encoder = load_model(plugin, str(GOOGLE / "bert_model.ckpt"), "features", flags=flags)
    pooled = encoder(batch, training=False)["pooled_output"].numpy()
    logits = classifier(batch, training=False)["logits"].numpy()
    np.testing.assert_allclose(logits, pooled @ weights.T + bias, atol=1e-5)
    _, from_run = load_model(plugin, str(run), "classify", flags=flags)
    np.testing.assert_allclose(from_run(batch, training=False)["logits"].numpy(), logits, atol=1e-6)
