"""`train.keep_best=METRIC`: keep the checkpoint of the best held-out figure under RUN/best/.

RUN/best is a complete, minimal run directory (marker, config.yaml, vocab.txt and
tokenizer_config.json when the run has them, checkpoints/ckpt-STEP + its pointer) plus
best.json = {"metric", "value", "step", "mode"}, so every `--init RUN` reads `--init RUN/best`
unchanged. It is replaced whole: the new one is written into RUN/.best.tmp-XXXX (best.json
last, so a temporary directory holding it is complete) and swapped in with one
renameat2(RENAME_EXCHANGE) where the file system has it; elsewhere the old one is renamed
aside first and removed after. A kill at any moment leaves the old complete best or the new
one, and the next run tidies what the kill left (docs/training.md, "Best checkpoint").
"""

from __future__ import annotations

import ctypes
import json
import math
import os
import secrets
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path

import tensorflow as tf

from nvlm.checkpoint_files import write_pointer
from nvlm.errors import UserError
from nvlm.outputs import fsync_path, write_json
from nvlm.report import info, warn
from nvlm.run_dir import BEST, CHECKPOINTS, CONFIG, TOKENIZER_CONFIG, VOCAB, mark

BEST_JSON = "best.json"
TMP_PREFIX = f".{BEST}.tmp-"  # a best being written
OLD_PREFIX = f".{BEST}.old-"  # the previous best, renamed aside (no RENAME_EXCHANGE)
# Figures where lower is better; every other figure (accuracy, f1, exact, mcc, pearson, ...)
# is better higher. Matched as parts of the name: "mlm_loss", "eval_ppl", "dev_mse".
_LOWER_IS_BETTER = ("loss", "ppl", "perplexity", "bpc", "bpt", "mse")


def parse_metric(value: str) -> tuple[str, str]:
    """`train.keep_best` as (figure, "min" | "max"): "NAME" (direction from the name) or
    "min:NAME" / "max:NAME"."""
    mode, sep, name = value.partition(":")
    if sep and mode in ("min", "max") and name:
        return name, mode
    lower = any(word in value.lower() for word in _LOWER_IS_BETTER)
    return value, "min" if lower else "max"


def check_metric(value: str, evaluates: bool, figures: Iterable[str]) -> tuple[str, str]:
    """(figure, mode) of `train.keep_best=value`, or a UserError naming what the run can keep:
    called before the first step, so a typo costs no training."""
    name, mode = parse_metric(value)
    available = sorted(figures)
    if not evaluates:
        raise UserError(
            f"train.keep_best={value} needs held-out evaluation while training, and this run "
            "evaluates nothing (pass --eval-data, or drop train.keep_best)"
        )
    if name not in available:
        raise UserError(
            f"train.keep_best={value}: this run's held-out figures are {', '.join(available)} "
            "(name one of them, optionally as min:NAME or max:NAME)"
        )
    return name, mode


class BestCheckpoint:
    """Decides whether a held-out figure beats the best so far and, if it does, writes the
    training state as RUN/best (rank 0 only: `owner`).

    Args:
        run_dir: the run directory (RUN/config.yaml and the vocab files are copied from it).
        metric: the figure, without its "eval_" prefix (e.g. "mlm_loss", "accuracy").
        mode: "min" or "max".
        owner: this process writes RUN/best (rank 0); the others only validate.

    Example:
        best = BestCheckpoint(run, "mlm_loss", "min")
        best.consider(step, {"eval_mlm_loss": 2.31}, trainer.state)
    """

    def __init__(self, run_dir: Path, metric: str, mode: str, *, owner: bool = True) -> None:
        self.run_dir = Path(run_dir)
        self.metric = metric
        self.mode = mode
        self.owner = owner
        self.value: float | None = None
        self.step: int | None = None
        self._warned = False
        if owner:
            self._tidy()
            self._read_record()

    @property
    def path(self) -> Path:
        return self.run_dir / BEST

    def is_better(self, value: float) -> bool:
        """Strictly better than the best so far (a tie keeps the earlier step)."""
        if not math.isfinite(value):
            return False
        if self.value is None:
            return True
        return value < self.value if self.mode == "min" else value > self.value

    def consider(self, step: int, figures: Mapping[str, float], state) -> bool:
        """Write RUN/best from `state` if `figures["eval_" + metric]` is a new best; return
        whether it did."""
        if not self.owner:
            return False
        value = figures.get(f"eval_{self.metric}")
        if value is None:
            if not self._warned:
                warn(f"train.keep_best: step {step} gave no held-out {self.metric}; RUN/best kept")
                self._warned = True
            return False
        if not self.is_better(float(value)):
            return False
        self.write(step, float(value), state)
        info(f"step {step}: best held-out {self.metric} so far ({value:.4g}), kept in {self.path}")
        return True

    def write(self, step: int, value: float, state) -> None:
        """RUN/best := a run directory holding `state` as checkpoint `step`, atomically."""
        tmp = _new_directory(self.run_dir, TMP_PREFIX)
        try:
            mark(tmp)
            for name in (CONFIG, VOCAB, TOKENIZER_CONFIG):
                if (self.run_dir / name).is_file():
                    shutil.copyfile(self.run_dir / name, tmp / name)
            ckpts = tmp / CHECKPOINTS
            ckpts.mkdir()
            prefix = tf.train.Checkpoint(state=state).write(str(ckpts / f"ckpt-{step}"))
            write_pointer(ckpts, prefix)
            fsync_path(ckpts)
            record = {"metric": self.metric, "value": value, "step": step, "mode": self.mode}
            write_json(tmp / BEST_JSON, record)  # last: its presence marks a complete best
            fsync_path(tmp)
            old = _swap(tmp, self.path)
            fsync_path(self.run_dir)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        self.value, self.step = value, step

    # -- what a previous run left ---------------------------------------------------------------
    def _tidy(self) -> None:
        """Finish or undo what a kill during `write` left: without RUN/best, a complete new
        one (its best.json written) is put in place, else the old one renamed aside; then the
        remaining temporary directories go."""
        leftovers = sorted(self.run_dir.glob(f"{TMP_PREFIX}*")) + sorted(
            self.run_dir.glob(f"{OLD_PREFIX}*")
        )
        if not self.path.exists():
            complete = [p for p in leftovers if (p / BEST_JSON).is_file()]
            if complete:
                os.replace(complete[0], self.path)
                warn(f"restored {self.path} from {complete[0].name}, left by an interrupted save")
        for path in leftovers:
            if path.exists():
                shutil.rmtree(path, ignore_errors=True)

    def _read_record(self) -> None:
        """Continue the comparisons of the run this one resumes (RUN/best/best.json)."""
        try:
            record = json.loads((self.path / BEST_JSON).read_text())
        except (OSError, ValueError):
            return
        if not isinstance(record, dict):
            return
        if record.get("metric") != self.metric or record.get("mode") != self.mode:
            warn(
                f"{self.path} holds the best {record.get('mode')}:{record.get('metric')}; "
                f"train.keep_best={self.mode}:{self.metric} replaces it at the next evaluation"
            )
            return
        try:
            self.value, self.step = float(record["value"]), int(record["step"])
        except (KeyError, TypeError, ValueError):
            return


def _new_directory(parent: Path, prefix: str) -> Path:
    """A new directory `parent/prefix<random>` with the permissions of the run's others (the
    umask's; `tempfile.mkdtemp` would make RUN/best private to its owner)."""
    while True:
        path = parent / f"{prefix}{secrets.token_hex(4)}"
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue


# -- the swap --------------------------------------------------------------------------------
_RENAME_EXCHANGE = 2  # linux/fs.h
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths in one step (Linux renameat2 RENAME_EXCHANGE); False where the
    C library or the file system does not offer it."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p]
    renameat2.argtypes += [ctypes.c_uint]
    done = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    return done == 0


def _swap(new: Path, dst: Path) -> Path | None:
    """Put the directory `new` at `dst`; return where the previous `dst` now is (to remove), or
    None when there was none."""
    if not dst.exists():
        os.replace(new, dst)
        return None
    if _exchange(new, dst):
        return new  # `new` now holds the previous best
    # Two renames: between them RUN/best is missing, and `_tidy` of the next run puts the
    # complete new one (or the old one) back.
    old = _new_directory(dst.parent, OLD_PREFIX)
    os.replace(dst, old)  # an empty directory is replaced
    os.replace(new, dst)
    return old
