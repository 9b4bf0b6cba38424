"""The run directory's one owner: its layout (the names below), and what may be created,
resumed, cleared and locked.

- RUN has checkpoints and the same resolved config -> resume from the newest checkpoint that
  restores completely (nvlm.train.state).
- RUN has checkpoints and a different config -> refuse (name the first differing key).
- `--no-resume` starts over only if RUN is empty, or with `--overwrite`.
- `--overwrite` clears only what nvlm wrote (`OWNED`) in a directory it recognises as one of
  its runs; anything else is refused and nothing is touched (docs/reliability.md).
- A run holds an exclusive lock on RUN/.lock while it trains; a second run on the same RUN is
  refused, naming the holder.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import yaml

from nvlm import __version__
from nvlm.checkpoint_files import holds_checkpoints
from nvlm.errors import UserError
from nvlm.outputs import check_writable_dir, exclusive_lock, read_yaml, refuse_inputs

# Keys that may differ between the original run and a resume without changing the result.
RESUME_SAFE = {
    "train.log_every",
    "train.checkpoint_every",
    "train.keep_checkpoints",
    "data.verify",  # how much of the data is checked at start, not what is trained
    # Held-out evaluation while training: read-only, it changes no weight.
    "data.eval_data",
    "train.eval_every",
    "train.eval_each_epoch",
    "train.keep_best",
    "train.eval_shared",
}

# The layout of a run directory: every name nvlm gives a file in RUN is spelled here only.
MARKER = ".nvlm"  # {"kind": "run", "nvlm": version, "created": ...}: this directory is ours
LOCK = ".lock"  # held while a run trains (see `locked`)
CONFIG = "config.yaml"  # the resolved config, with where each value came from
CHECKPOINTS = "checkpoints"  # ckpt-STEP.{index,data-*} and the `checkpoint` pointer
METRICS = "metrics.jsonl"  # one JSON object per logged step
TENSORBOARD = "tb"
LOGS = "logs"  # run.log, rank-N.log, rank-N.status.json
SUMMARY = "summary.json"  # the end-of-run figures
VOCAB = "vocab.txt"  # the vocab the model was trained with (the name HF directories use too)
TOKENIZER_CONFIG = "tokenizer_config.json"  # {"do_lower_case": ...}, as Hugging Face reads it
HF_EXPORT = "hf"  # Hugging Face exports of the trained model
EVAL = "eval"  # evaluation outputs (predictions, null odds)
BEST = "best"  # the checkpoint of the best held-out figure (train.keep_best): a run
# Everything nvlm itself writes in a run directory; --overwrite removes these and only these.
OWNED = (MARKER, CONFIG, CHECKPOINTS, METRICS, TENSORBOARD, LOGS, SUMMARY, VOCAB,
         TOKENIZER_CONFIG, HF_EXPORT, EVAL, BEST)  # fmt: skip


def has_checkpoint(run: Path) -> bool:
    """Any checkpoint file, whole or not: such a run is resumed or refused, never restarted."""
    return holds_checkpoints(Path(run) / CHECKPOINTS)


def is_nvlm_run(run: Path) -> bool:
    """RUN carries nvlm's marker, or (runs made before the marker) a config.yaml of nvlm's."""
    run = Path(run)
    if (run / MARKER).is_file():
        try:
            return json.loads((run / MARKER).read_text()).get("kind") == "run"
        except (OSError, ValueError, AttributeError):
            return False
    try:
        old = yaml.safe_load((run / CONFIG).read_text(encoding="utf-8"))
    except (OSError, ValueError, yaml.YAMLError):
        return False
    return isinstance(old, dict) and "train" in old and "model" in old


def prepare(
    run: Path,
    new_config: dict,
    *,
    resume: bool,
    overwrite: bool,
    inputs: Mapping[str, object] | None = None,
) -> bool:
    """Make RUN ready; return True when the run will resume from a checkpoint."""
    run = Path(run)
    check_target(run, inputs)
    # The lock file this command just took is not content to clear (a new --out has only it).
    if overwrite and run.is_dir() and any(p.name != LOCK for p in run.iterdir()):
        if not is_nvlm_run(run):
            raise UserError(
                f"--overwrite clears only nvlm runs, and {run} is not one (no {MARKER} marker "
                "or nvlm config.yaml in it); nothing was removed (choose another --out)"
            )
        clear(run)
    if has_checkpoint(run):
        if not resume:
            raise UserError(
                f"run directory {run} holds checkpoints and --no-resume was given "
                "(add --overwrite to start over, or choose another --out)"
            )
        old_path = run / CONFIG
        if old_path.exists():
            old = read_yaml(old_path, "run config", fix="restore it, or use --overwrite") or {}
            diff = first_difference(_layout_free(_flatten(old)), _layout_free(_flatten(new_config)))
            if diff:
                key, a, b = diff
                raise UserError(
                    f"{run} holds a run with {key}={a!r} but this command resolves {key}={b!r} "
                    "(resume with the same settings, or use --overwrite / another --out)"
                )
        return True
    run.mkdir(parents=True, exist_ok=True)
    mark(run)
    return False


def check_target(run: Path, inputs: Mapping[str, object] | None = None) -> None:
    """Refuse, before anything is written, a RUN that is (or contains) an input, is a file, is
    not writable, or holds files that nvlm did not write."""
    refuse_inputs(run, inputs or {})
    if run.exists() and not run.is_dir():
        raise UserError(f"--out {run} is a file, not a directory (choose another --out)")
    check_writable_dir(run)
    entries = _foreign_entries(run)
    if entries is not None and not is_nvlm_run(run):
        # git clone's rule: a directory with someone else's files is not a run to write into.
        shown = ", ".join(sorted(entries)[:3]) + (", ..." if len(entries) > 3 else "")
        raise UserError(
            f"--out {run} is not empty and is not an nvlm run (it holds {shown}); nvlm neither "
            "writes into nor clears it, even with --overwrite (choose a new or empty --out)"
        )


def mark(run: Path) -> None:
    """Write RUN/.nvlm (once): the proof that --overwrite may clear this directory later."""
    path = Path(run) / MARKER
    if not path.exists():
        from nvlm.outputs import write_text

        write_text(
            path,
            json.dumps({"kind": "run", "nvlm": __version__, "created": time.time()}) + "\n",
        )


def clear(run: Path) -> None:
    """Remove what nvlm wrote in RUN (and its temporary files); keep everything else."""
    for name in OWNED:
        path = run / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
    for tmp in run.glob(".*.tmp"):
        tmp.unlink(missing_ok=True)
    for tmp in run.glob(f".{BEST}.*-*"):  # a best checkpoint's save cut short (nvlm.train.best)
        shutil.rmtree(tmp, ignore_errors=True)


def _foreign_entries(run: Path) -> list[str] | None:
    """Entries of RUN nvlm did not write (None when RUN is missing or holds nothing else)."""
    if not run.is_dir():
        return None
    names = [
        p.name
        for p in run.iterdir()
        if p.name not in OWNED and p.name != LOCK and not p.name.endswith(".tmp")
    ]
    return names or None


# -- the lock ------------------------------------------------------------------------------------
@contextmanager
def locked(run: Path, inputs: Mapping[str, object] | None = None) -> Iterator[int]:
    """Hold an exclusive lock on RUN/.lock while the block runs (RUN is checked first and made
    if missing; if the block fails and RUN was made here and is still empty, it goes again).
    Yields the lock's file descriptor: a process started with it (`pass_fds`) keeps RUN locked
    until it ends too.

    `fcntl.flock`: the kernel drops it when the process ends however it ends (SIGKILL, OOM), so
    a stale lock never blocks a rerun. On NFS (Linux >= 2.6.12) flock is carried out as a POSIX
    lock by the server and holds across clients; on Lustre it needs the `flock` mount option
    (docs/reliability.md)."""
    run = Path(run)
    check_target(run, inputs)
    made = not run.exists()
    run.mkdir(parents=True, exist_ok=True)
    path = run / LOCK
    busy = (
        f"run directory {run} is in use by {{}} (wait for that run to end, or choose another --out)"
    )
    ok = False
    try:
        with exclusive_lock(path, lambda: busy.format(_holder(path))) as fd:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()} {socket.gethostname()} {time.time():.0f}\n".encode())
            yield fd  # a child process that inherits it holds the lock as long as it lives
            ok = True
    finally:
        if made and not ok and {p.name for p in run.iterdir()} <= {LOCK, MARKER}:
            shutil.rmtree(run, ignore_errors=True)


def _holder(path: Path) -> str:
    try:
        pid, host, since = path.read_text().split()[:3]
    except (OSError, ValueError):
        return "another nvlm process"
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(since)))
    return f"nvlm PID {pid} on host {host} (since {started})"


# -- config comparison ---------------------------------------------------------------------------
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
        if key in RESUME_SAFE or key not in old:
            continue  # a key newer than the run's config.yaml: the run had its default
        if old.get(key) != new.get(key):
            return key, old.get(key), new.get(key)
    return None
