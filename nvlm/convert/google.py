"""Google TF1 BERT checkpoints: `bert_config.json` + `bert_model.ckpt.{index,data-*}`.

These are name-based checkpoints written by `tf.compat.v1.train.Saver` in Google's
`run_pretraining.py` (and NVIDIA's TF1 BERT): variables named like
`bert/encoder/layer_0/attention/self/query/kernel` (`[in, out]`), `cls/predictions/output_bias`,
`cls/seq_relationship/output_weights` (`[2, hidden]`), for SQuAD `cls/squad/output_weights`,
for classification (run_classifier.py) `output_weights` `[num_labels, hidden]`.
Checkpoints saved during pretraining also hold the optimizer's slots and step counter, skipped.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nvlm import outputs
from nvlm.convert.hf import bert_config_from_json
from nvlm.errors import UserError
from nvlm.models.bert.config import BertConfig

# Optimizer state and bookkeeping in training checkpoints (Adam/LAMB slots of Google's and
# NVIDIA's optimizers, loss scaling, step counters): not model weights.
_SKIP_SUFFIXES = ("/adam_m", "/adam_v", "/Momentum", "/ExponentialMovingAverage")
_SKIP_NAMES = ("global_step", "good_steps", "loss_scale", "current_loss_scale")
# Google stores these heads as [outputs, hidden] (`output_weights`, used with transpose_b).
_TRANSPOSED_HEADS = {
    "cls/seq_relationship/output_weights": "cls/seq_relationship/kernel",
    "cls/seq_relationship/output_bias": "cls/seq_relationship/bias",
    "cls/squad/output_weights": "cls/squad/kernel",
    "cls/squad/output_bias": "cls/squad/bias",
    # run_classifier.py's classification layer: top-level names, [num_labels, hidden].
    "output_weights": "cls/classifier/kernel",
    "output_bias": "cls/classifier/bias",
}


def checkpoint_prefix(path: Path) -> Path | None:
    """The TF checkpoint prefix that `path` names: a prefix, a directory with a `checkpoint`
    state file (its latest checkpoint), or a directory holding exactly one `*.index`."""
    if Path(f"{path}.index").is_file():
        return path
    if path.is_dir():
        if (path / "checkpoint").is_file():  # a training directory: its latest checkpoint
            import tensorflow as tf

            latest = tf.train.latest_checkpoint(str(path))
            if latest:
                return Path(latest)
        indexes = sorted(path.glob("*.index"))
        if len(indexes) == 1:
            return indexes[0].with_suffix("")
        if len(indexes) > 1:
            names = ", ".join(i.name for i in indexes)
            raise UserError(f"{path} holds several checkpoints ({names})", hint="pass one prefix")
    return None


def read_google_config(prefix: Path) -> BertConfig:
    path = prefix.parent / "bert_config.json"
    if not path.is_file():
        raise UserError(
            f"no bert_config.json next to the checkpoint {prefix}",
            hint="Google's checkpoints ship it in the same directory",
        )
    return bert_config_from_json(outputs.read_json(path), path)


def google_name(name: str) -> str:
    """Canonical name -> Google's variable name (for error messages)."""
    inverse = {canonical: google for google, canonical in _TRANSPOSED_HEADS.items()}
    if name in inverse:
        return inverse[name]
    return name if name.startswith("cls/") else f"bert/{name}"


def read_google_weights(prefix: Path) -> dict[str, np.ndarray]:
    """All model variables of the checkpoint under canonical names."""
    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(prefix))
    weights = {}
    for name in reader.get_variable_to_shape_map():
        if name in _SKIP_NAMES or name.endswith(_SKIP_SUFFIXES) or name.startswith("_"):
            continue
        value = np.asarray(reader.get_tensor(name))
        if name in _TRANSPOSED_HEADS:
            canonical = _TRANSPOSED_HEADS[name]
            value = value.T if value.ndim == 2 else value
        else:
            canonical = name.removeprefix("bert/")
        weights[canonical] = value
    return weights
