"""Read model weights back from an nvlm run directory or checkpoint prefix.

The training checkpoint (see `state.TrainState`) stores model variables as the list
`state/model_vars/<i>` in `model.variables` order; we rebuild the same model from the run's
config.yaml and restore only that list (optimizer slots and counters are ignored).
"""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf

from nvlm.checkpoint_files import newest_restorable, steps_present
from nvlm.errors import UserError
from nvlm.run_dir import CHECKPOINTS, CONFIG


def is_nvlm_source(path: str | Path) -> bool:
    p = Path(path)
    if p.is_dir():
        return (p / CONFIG).exists() and (p / CHECKPOINTS).is_dir()
    return Path(f"{p}.index").exists() and (p.parent.parent / CONFIG).exists()


def run_dir_of(path: str | Path) -> Path:
    p = Path(path)
    return p if p.is_dir() else p.parent.parent


def checkpoint_of(path: str | Path) -> str:
    """The checkpoint prefix a run directory's pointer names, or the prefix given (no restore:
    `restore_model` is what falls back to an older checkpoint when the newest is damaged)."""
    p = Path(path)
    if p.is_dir():
        steps = steps_present(p / CHECKPOINTS)
        if not steps:
            raise UserError(
                f"run {p} has no checkpoint yet (train it first, or pass another --init)"
            )
        return str(p / CHECKPOINTS / f"ckpt-{steps[0]}")
    if not Path(f"{p}.index").exists():
        raise UserError(f"checkpoint {p} does not exist (pass a run directory or a ckpt-N prefix)")
    return str(p)


class _ModelVars(tf.Module):
    def __init__(self, variables) -> None:
        super().__init__(name="state")
        self.model_vars = list(variables)


def restore_model(model, path: str | Path) -> str:
    """Restore `model`'s variables from an nvlm checkpoint; return the prefix read. For a run
    directory: its newest checkpoint that restores completely (a damaged newer one is skipped
    with a warning, as when a run resumes)."""
    from nvlm.report import warn

    p = Path(path)
    if p.is_dir():
        prefix = newest_restorable(
            p / CHECKPOINTS, lambda prefix: _restore(model, prefix), say=warn, what="anything"
        )
        if prefix is None:
            raise UserError(
                f"run {p} has no checkpoint yet (train it first, or pass another --init)"
            )
        return prefix
    prefix = checkpoint_of(p)
    try:
        _restore(model, prefix)
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged file: one line, not a traceback
        raise UserError(
            f"checkpoint {prefix} cannot be read ({exc.__class__.__name__}: "
            f"{' '.join(str(exc).split())[:160]}); pass its run directory to use the newest "
            "intact checkpoint"
        ) from None
    return prefix


def _restore(model, prefix: str) -> None:
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
