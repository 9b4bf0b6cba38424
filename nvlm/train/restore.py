"""Read model weights back from an nvlm run directory or checkpoint prefix.

The training checkpoint (see `state.TrainState`) stores model variables as the list
`state/model_vars/<i>` in `model.variables` order; we rebuild the same model from the run's
config.yaml and restore only that list (optimizer slots and counters are ignored).
"""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf

from nvlm.errors import UserError


def is_nvlm_source(path: str | Path) -> bool:
    p = Path(path)
    if p.is_dir():
        return (p / "config.yaml").exists() and (p / "checkpoints").is_dir()
    return Path(f"{p}.index").exists() and (p.parent.parent / "config.yaml").exists()


def run_dir_of(path: str | Path) -> Path:
    p = Path(path)
    return p if p.is_dir() else p.parent.parent


def checkpoint_of(path: str | Path) -> str:
    """The checkpoint prefix to read: RUN's latest, or the prefix given."""
    p = Path(path)
    if p.is_dir():
        latest = tf.train.latest_checkpoint(str(p / "checkpoints"))
        if not latest:
            raise UserError(
                f"run {p} has no checkpoint yet (train it first, or pass another --init)"
            )
        return latest
    if not Path(f"{p}.index").exists():
        raise UserError(f"checkpoint {p} does not exist (pass a run directory or a ckpt-N prefix)")
    return str(p)


class _ModelVars(tf.Module):
    def __init__(self, variables) -> None:
        super().__init__(name="state")
        self.model_vars = list(variables)


def restore_model(model, path: str | Path) -> str:
    """Restore `model`'s variables from an nvlm checkpoint; return the prefix read."""
    prefix = checkpoint_of(path)
    reader = tf.train.load_checkpoint(prefix)
    shapes = reader.get_variable_to_shape_map()
    values = [v.value for v in model.variables]
    for i, var in enumerate(values):
        key = f"state/model_vars/{i}/.ATTRIBUTES/VARIABLE_VALUE"
        if key not in shapes or list(shapes[key]) != list(var.shape):
            raise UserError(
                f"checkpoint {prefix} does not match this model at variable {i} "
                f"({model.variables[i].path}): was the run made with another config?"
            )
    ckpt = tf.train.Checkpoint(state=_ModelVars(values))
    ckpt.restore(prefix).expect_partial()
    return prefix
