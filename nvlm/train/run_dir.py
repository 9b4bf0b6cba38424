"""Run-directory policy: re-running the same command on the same RUN resumes it.

- RUN has checkpoints and the same resolved config -> resume from the latest checkpoint.
- RUN has checkpoints and a different config -> refuse (name the first differing key).
- `--no-resume` starts over only if RUN is empty, or with `--overwrite` (which clears it).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from nvlm.errors import UserError

# Keys that may differ between the original run and a resume without changing the result.
RESUME_SAFE = {"train.log_every", "train.checkpoint_every", "train.keep_checkpoints"}


def has_checkpoint(run: Path) -> bool:
    return (run / "checkpoints" / "checkpoint").exists()


def prepare(run: Path, new_config: dict, *, resume: bool, overwrite: bool) -> bool:
    """Make RUN ready; return True when the run will resume from a checkpoint."""
    run = Path(run)
    if run.exists() and not run.is_dir():
        raise UserError(f"--out {run} is a file, not a directory (choose another --out)")
    if overwrite and run.exists():
        shutil.rmtree(run)
    if run.exists() and any(run.iterdir()):
        if not resume:
            raise UserError(
                f"run directory {run} is not empty and --no-resume was given "
                "(add --overwrite to start over, or choose another --out)"
            )
        old_path = run / "config.yaml"
        if has_checkpoint(run) and old_path.exists():
            old = yaml.safe_load(old_path.read_text()) or {}
            diff = first_difference(_layout_free(_flatten(old)), _layout_free(_flatten(new_config)))
            if diff:
                key, a, b = diff
                raise UserError(
                    f"{run} holds a run with {key}={a!r} but this command resolves {key}={b!r} "
                    "(resume with the same settings, or use --overwrite / another --out)"
                )
            return True
        if has_checkpoint(run):
            return True
    run.mkdir(parents=True, exist_ok=True)
    return False


# The same run on another number of processes (--gpus) resumes: the data position and the
# schedule are global, so what must match is the global batch and the effective learning rate,
# not how they are split over processes, micro-batches and accumulation.
_LAYOUT = ("train.gpus", "train.batch_size", "train.accumulation", "train.lr", "train.lr_per_gpu")


def _layout_free(flat: dict) -> dict:
    try:
        gpus = int(flat["train.gpus"])
        batch = int(flat["train.batch_size"]) * int(flat["train.accumulation"]) * gpus
        lr = float(flat["train.lr"]) * (gpus if flat["train.lr_per_gpu"] else 1)
    except (KeyError, TypeError, ValueError):
        return flat
    out = {k: v for k, v in flat.items() if k not in _LAYOUT}
    out["train.global_batch"] = batch
    out["train.effective_lr"] = float(f"{lr:.12g}")  # 5e-4 x 2 == 1e-3 despite rounding
    return out


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def first_difference(old: dict, new: dict) -> tuple[str, object, object] | None:
    for key in sorted(set(old) | set(new)):
        if key in RESUME_SAFE:
            continue
        if old.get(key) != new.get(key):
            return key, old.get(key), new.get(key)
    return None
