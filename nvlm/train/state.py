"""Everything a killed run needs to continue exactly: model variables (trainable weights AND
non-trainable state such as Keras seed-generator states that drive dropout), optimizer slots,
loss scale, step counters and the data position.

Why not `tf.train.Checkpoint(model=model)`: with Keras 3 it does not save the seed-generator
state (measured on TF 2.21 / Keras 3.15), so dropout after a resume would differ. We track the
backing tf.Variables explicitly, in `model.variables` order, which is deterministic for a given
architecture.
"""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf

from nvlm.checkpoint_files import newest_restorable, remove_partial_saves, write_pointer
from nvlm.outputs import fsync_path


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
    The pointer is not trusted on restore, though (nvlm.checkpoint_files): the newest
    checkpoint that restores completely wins, and the pointer is rewritten to it.
    """

    def __init__(self, state: TrainState, directory: Path, keep: int) -> None:
        self.directory = Path(directory)
        self.keep = max(keep, 1)
        self.ckpt = tf.train.Checkpoint(state=state)
        self._manager = None

    @property
    def manager(self) -> tf.train.CheckpointManager:
        # Made after the restore, so that it reads the pointer the restore rewrote.
        if self._manager is None:
            self._manager = tf.train.CheckpointManager(
                self.ckpt, str(self.directory), max_to_keep=self.keep, checkpoint_name="ckpt"
            )
        return self._manager

    @property
    def latest(self) -> str | None:
        return self.manager.latest_checkpoint

    def restore_latest(self, *, owner: bool = True, say=None) -> str | None:
        """Restore the newest checkpoint that restores completely (None: there is none yet).
        `owner` (rank 0) also removes half-written saves and repairs the pointer."""
        if owner:
            for name in remove_partial_saves(self.directory):
                if say is not None:
                    say(f"removed {name}, a checkpoint save that was interrupted")

        def restore(prefix: str) -> None:
            self.ckpt.restore(prefix).assert_existing_objects_matched()

        path = newest_restorable(self.directory, restore, say=say)
        if path and owner:
            write_pointer(self.directory, path)
        return path

    def save(self, step: int) -> str:
        path = self.manager.save(checkpoint_number=step)
        fsync_path(self.directory)
        return path
