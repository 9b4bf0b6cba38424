"""Directories written whole: into a temporary directory next to the destination, then renamed
into place, so that a reader finds the destination complete or as it was before."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from nvlm.errors import UserError
from nvlm.run_dir import CHECKPOINTS, VOCAB


def require_empty(dst: Path, overwrite: bool) -> None:
    """Refuse to replace a non-empty `dst` without --overwrite, and with it unless nvlm wrote
    `dst` (git's rule: never clobber what is not yours)."""
    if dst.exists() and not dst.is_dir():
        raise UserError(f"{dst} is a file, not a directory (choose another DST)")
    if dst.exists() and any(dst.iterdir()):
        if not overwrite:
            raise UserError(
                f"{dst} exists and is not empty (add --overwrite or choose another DST)"
            )
        _require_ours(dst)


def is_nvlm_output(path: Path) -> bool:
    """An export or run directory nvlm wrote: its marker, an nvlm run's config.yaml, or (an
    ELECTRA pair) only sub-directories that are such outputs."""
    from nvlm.run_dir import MARKER, is_nvlm_run

    path = Path(path)
    if not path.is_dir():
        return False
    try:
        if json.loads((path / MARKER).read_text()).get("kind") in ("export", "run"):
            return True
    except (OSError, ValueError, AttributeError):
        pass
    if is_nvlm_run(path):
        return True
    entries = list(path.iterdir())
    return bool(entries) and all(e.is_dir() and is_nvlm_output(e) for e in entries)


def _require_ours(dst: Path) -> None:
    if not is_nvlm_output(dst):
        raise UserError(
            f"--overwrite replaces only directories nvlm wrote, and {dst} is not one (no .nvlm "
            "marker); nothing was removed (choose another DST)"
        )


def _umask() -> int:
    mask = os.umask(0o022)  # the only way to read it; set straight back
    os.umask(mask)
    return mask


def publish_modes(root: Path) -> None:
    """Give `root` and everything in it the modes a plain mkdir()/open() would (0755/0644 under
    the usual umask 022): mkdtemp makes a 0700 directory and safetensors writes its file 0600,
    which left exports unreadable by the other users of a shared model directory."""
    mask = _umask()
    for path in (root, *root.rglob("*")):
        if not path.is_symlink():
            path.chmod((0o777 if path.is_dir() else 0o666) & ~mask)


@contextmanager
def staged_directory(dst: Path, kind: str = "export") -> Iterator[Path]:
    """A fresh temporary directory next to `dst`; when the block completes it replaces `dst`,
    when it raises it is deleted. The result carries nvlm's marker (`kind`), so that a later
    --overwrite knows it may replace it."""
    from nvlm.run_dir import MARKER

    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dst.name}.", dir=dst.parent))
    try:
        yield tmp
        (tmp / MARKER).write_text(json.dumps({"kind": kind, "created": time.time()}) + "\n")
        publish_modes(tmp)
        if dst.exists():
            _require_ours(dst)
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
    from nvlm.data.vocab import write_tokenizer_config
    from nvlm.train.restore import _ModelVars

    with staged_directory(dst, kind="run") as tmp:
        config_mod.write(cfg, tmp)
        tf.train.Checkpoint(state=_ModelVars([v.value for v in model.variables])).write(
            str(tmp / CHECKPOINTS / "ckpt-0")
        )
        (tmp / CHECKPOINTS / "checkpoint").write_text(
            'model_checkpoint_path: "ckpt-0"\nall_model_checkpoint_paths: "ckpt-0"\n'
        )
        if vocab:
            shutil.copyfile(vocab, tmp / VOCAB)
        write_tokenizer_config(tmp, lowercase)
