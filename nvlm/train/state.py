"""Everything a killed run needs to continue exactly: model variables (trainable weights AND
non-trainable state such as Keras seed-generator states that drive dropout), optimizer slots,
loss scale, step counters and the data position.

Why not `tf.train.Checkpoint(model=model)`: with Keras 3 it does not save the seed-generator
state (measured on TF 2.21 / Keras 3.15), so dropout after a resume would differ. We track the
backing tf.Variables explicitly, in `model.variables` order, which is deterministic for a given
architecture.
"""

from __future__ import annotations

import os
from pathlib import Path

import tensorflow as tf


class TrainState(tf.Module):
    """Checkpointable state of one training run."""

    def __init__(self, model, optimizer, loss_scale) -> None:
        super().__init__(name="train_state")
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        # Global data position: examples consumed by completed optimizer steps (all ranks).
        self.examples = tf.Variable(0, dtype=tf.int64, trainable=False, name="examples")
        self.skipped = tf.Variable(0, dtype=tf.int64, trainable=False, name="skipped_steps")
        self.model_vars = [v.value for v in model.variables]
        self.model_paths = [v.path for v in model.variables]
        self.opt_vars = optimizer.slot_variables()
        self.scale_vars = loss_scale.variables()
        self.extra: list[tf.Variable] = []

    def add_extra(self, variables) -> None:
        """Model-specific state (e.g. Transformer-XL memories) to checkpoint with the run."""
        self.extra.extend(variables)

    def all_variables(self) -> list[tf.Variable]:
        return [
            self.step,
            self.examples,
            self.skipped,
            *self.model_vars,
            *self.opt_vars,
            *self.scale_vars,
            *self.extra,
        ]


class Checkpoints:
    """A `tf.train.CheckpointManager` over RUN/checkpoints keeping K.

    TensorFlow writes the data and index files first and replaces the `checkpoint` pointer file
    atomically last, so a run killed while saving still points at the previous complete one.
    """

    def __init__(self, state: TrainState, directory: Path, keep: int) -> None:
        self.directory = Path(directory)
        self.ckpt = tf.train.Checkpoint(state=state)
        self.manager = tf.train.CheckpointManager(
            self.ckpt, str(self.directory), max_to_keep=max(keep, 1), checkpoint_name="ckpt"
        )

    @property
    def latest(self) -> str | None:
        return self.manager.latest_checkpoint

    def restore_latest(self) -> str | None:
        path = self.manager.latest_checkpoint
        if path:
            self.ckpt.restore(path).assert_existing_objects_matched()
        return path

    def save(self, step: int) -> str:
        path = self.manager.save(checkpoint_number=step)
        _fsync_dir(self.directory)
        return path


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
