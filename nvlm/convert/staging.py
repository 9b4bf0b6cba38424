"""Directories written whole: into a temporary directory next to the destination, then renamed
into place, so that a reader finds the destination complete or as it was before."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from nvlm.errors import UserError


def require_empty(dst: Path, overwrite: bool) -> None:
    """Refuse to replace a non-empty `dst` without --overwrite."""
    if dst.exists() and any(dst.iterdir()) and not overwrite:
        raise UserError(f"{dst} exists and is not empty (add --overwrite or choose another DST)")


@contextmanager
def staged_directory(dst: Path) -> Iterator[Path]:
    """A fresh temporary directory next to `dst`; when the block completes it replaces `dst`,
    when it raises it is deleted."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dst.name}.", dir=dst.parent))
    try:
        yield tmp
        if dst.exists():
            shutil.rmtree(dst)
        os.replace(tmp, dst)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_run_dir(cfg, model, dst: Path, vocab: str | Path | None, lowercase: bool) -> None:
    """An nvlm run directory usable as --init: config.yaml, `model`'s variables as checkpoint
    ckpt-0, vocab.txt (when there is one) and the casing in tokenizer_config.json."""
    import tensorflow as tf

    from nvlm import config as config_mod
    from nvlm.models.bert.plugin import write_tokenizer_config
    from nvlm.train.restore import _ModelVars

    with staged_directory(dst) as tmp:
        config_mod.write(cfg, tmp)
        tf.train.Checkpoint(state=_ModelVars([v.value for v in model.variables])).write(
            str(tmp / "checkpoints" / "ckpt-0")
        )
        (tmp / "checkpoints" / "checkpoint").write_text(
            'model_checkpoint_path: "ckpt-0"\nall_model_checkpoint_paths: "ckpt-0"\n'
        )
        if vocab:
            shutil.copyfile(vocab, tmp / "vocab.txt")
        write_tokenizer_config(tmp, lowercase)
