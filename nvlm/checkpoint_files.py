"""Which checkpoint of RUN/checkpoints to read: the newest one that restores completely.

TensorFlow's `checkpoint` pointer file is a convenience, not the truth: a garbled pointer makes
`tf.train.CheckpointManager` ignore every checkpoint (with a warning) and a run would start over
at step 0 over its own checkpoints; a truncated or bit-flipped data file makes a restore fail
with a raw traceback although an older checkpoint is intact. So nvlm lists the `ckpt-N.index`
files itself, newest first, tries each until one restores completely (TensorFlow checks every
tensor's crc32c while reading), says which ones it skipped and why, and rewrites the pointer.
`ckpt-N_temp` directories are what a kill in the middle of a save leaves: they are removed.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

from nvlm.errors import UserError

_NAME = re.compile(r"^ckpt-(\d+)(?:\.index|\.data-\d+-of-\d+)$")
POINTER = "checkpoint"


def steps_present(directory: Path) -> list[int]:
    """Steps that have any checkpoint file (index or data), newest first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    steps = {int(m[1]) for p in directory.iterdir() if (m := _NAME.match(p.name))}
    return sorted(steps, reverse=True)


def holds_checkpoints(directory: Path) -> bool:
    return bool(steps_present(directory))


def remove_partial_saves(directory: Path) -> list[str]:
    """Delete `ckpt-N_temp*` directories (a save killed half-way); return their names."""
    directory = Path(directory)
    removed = []
    if directory.is_dir():
        for path in directory.glob("ckpt-*_temp*"):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(path.name)
    return removed


def newest_restorable(
    directory: Path,
    restore: Callable[[str], None],
    *,
    say: Callable[[str], None] | None = None,
    what: str = "the run",
) -> str | None:
    """Call `restore(prefix)` on each checkpoint, newest first, until one succeeds; return its
    prefix. None when the directory holds no checkpoint at all; a UserError (exit 2) when it
    holds some and none restores, so that nothing ever starts over on top of them."""
    directory = Path(directory)
    skipped: list[str] = []
    for step in steps_present(directory):
        prefix = directory / f"ckpt-{step}"
        if not Path(f"{prefix}.index").is_file():
            skipped.append(f"ckpt-{step} (its .index file is missing)")
            continue
        try:
            restore(str(prefix))
        except UserError:
            raise  # the checkpoint is readable but not this model's: say that, not "damaged"
        except Exception as exc:  # noqa: BLE001 - any failure to read means: not this one
            skipped.append(f"ckpt-{step} ({_reason(exc)})")
            continue
        if say is not None:
            for line in skipped:
                say(f"skipped checkpoint {line}; using ckpt-{step}")
        return str(prefix)
    if skipped:
        raise UserError(
            f"no checkpoint in {directory} restores completely: {'; '.join(skipped)}. "
            f"nvlm will not start {what} over on top of them: check them with "
            f"`nvlm eval`/`nvlm convert`, move them aside, or pass --overwrite to start over"
        )
    return None


def write_pointer(directory: Path, chosen: str) -> None:
    """Point `checkpoint` at `chosen`, listing the intact-looking older ones for the manager's
    max_to_keep bookkeeping (newer, broken ones are left alone: the next save of that step
    replaces them)."""
    from nvlm.outputs import write_text

    directory = Path(directory)
    name = Path(chosen).name
    if _pointer_names(directory) == name:
        return  # intact and right (a finished run's rerun changes nothing)
    step = int(name.split("-")[1])
    older = [
        f"ckpt-{s}"
        for s in sorted(steps_present(directory))
        if s <= step and Path(directory / f"ckpt-{s}.index").is_file()
    ]
    lines = [f'model_checkpoint_path: "{name}"']
    lines += [f'all_model_checkpoint_paths: "{n}"' for n in older]
    # With timestamps the manager keeps counting these for train.keep_checkpoints (without
    # them it forgets them, and they would never be deleted).
    lines += [
        f"all_model_checkpoint_timestamps: {(directory / f'{n}.index').stat().st_mtime:.6f}"
        for n in older
    ]
    write_text(directory / POINTER, "\n".join(lines) + "\n")


def _pointer_names(directory: Path) -> str | None:
    """The checkpoint name the pointer file names, if it parses."""
    import tensorflow as tf

    try:
        state = tf.train.get_checkpoint_state(str(directory))
    except Exception:  # noqa: BLE001 - a garbled pointer is what is being repaired
        return None
    return Path(state.model_checkpoint_path).name if state else None


def _reason(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    if "Read less bytes" in text or "too short" in text or "truncated" in text.lower():
        return "a file is truncated"
    if "Checksum does not match" in text:
        return "a checksum does not match (corrupt data file)"
    if "not found" in text.lower() or "no such file" in text.lower():
        return "a file is missing"
    text = re.sub(r"\{\{[^}]*\}\}\s*", "", text)
    return f"{type(exc).__name__}: {text[:160]}"
