"""Checks of the data files a training run reads, against what their manifest records.

Three levels, from cheap to thorough (docs/training.md, "Corrupt data"):

- at start, always (`data.verify: size`): each file exists, has the byte size the manifest
  records (directories made before sizes were recorded skip this one), opens as HDF5 and holds
  exactly the datasets, dtypes and shapes (row count included) the manifest describes. A stat
  and an HDF5 metadata read per file, no data read: seconds for thousands of shards. A
  truncated file fails here (HDF5 stores the file's end in its superblock);
- at start, opt-in (`data.verify: full`): every file re-hashed against its sha256, as
  `nvlm data verify` does first. It reads every byte: the only way to see a change that keeps
  the layout and leaves every value in range;
- while training: the rows read are checked against the ranges the model indexes with (token
  ids inside the vocabulary, positions inside the sequence, ...) in numpy, before they reach
  TensorFlow, and a read error names the file.

Every failure is one `UserError` naming the file and `nvlm data verify DIR`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import h5py
import numpy as np

from nvlm.data.checksum import sha256_file
from nvlm.errors import UserError

VERIFY_MODES = ("size", "full")

# Dataset name -> (dtype, full shape) that a file must hold.
Layout = Mapping[str, tuple[np.dtype, tuple[int, ...]]]


def corrupt(path: Path, problem: str) -> UserError:
    """The one error for a bad data file: what is wrong, and the command that checks it all."""
    return UserError(
        f"{path} {problem}",
        hint=f"check the directory with: nvlm data verify {Path(path).parent}, then re-create "
        "the bad file(s) with the command that made them",
    )


def check_file(path: Path, layout: Layout, *, size: int | None, sha256: str | None = None) -> None:
    """Raise `corrupt(...)` unless `path` matches its record; `sha256` given = also hash it."""
    path = Path(path)
    if not path.is_file():
        raise corrupt(path, "is missing")
    actual = path.stat().st_size
    if size is not None and actual != size:
        raise corrupt(path, f"has {actual:,} bytes but the manifest records {size:,}")
    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        raise corrupt(path, f"is not a readable HDF5 file ({_first_line(exc)})") from None
    with handle as f:
        names = sorted(f.keys())
        if names != sorted(layout):
            raise corrupt(path, f"holds datasets {names}, the manifest lists {sorted(layout)}")
        for name, (dtype, shape) in layout.items():
            dset = f[name]
            if dset.dtype != dtype or dset.shape != tuple(shape):
                raise corrupt(
                    path,
                    f"has {name} {dset.dtype} {list(dset.shape)}, "
                    f"the manifest says {np.dtype(dtype)} {list(shape)}",
                )
    if sha256 is not None and sha256_file(path) != sha256:
        raise corrupt(path, "differs from the sha256 in its manifest: its content changed")


def check_files(
    files: Sequence[tuple[Path, Layout, dict]], *, full: bool = False, world=None
) -> None:
    """`check_file` for each (path, layout, manifest record with `size`/`sha256`).

    With `full` and several ranks, rank r hashes files r, r + world, ...; the ranks then agree
    on the bad files (one small allreduce), so every rank stops with the same message, rank 0's
    on the console, instead of one rank dying alone.
    """
    rank, size = (world.rank, world.size) if world is not None else (0, 1)
    if full:
        from nvlm.report import console  # quiet on ranks other than 0

        total = sum(Path(p).stat().st_size for p, _, _ in files if Path(p).is_file())
        amount = f"{total / 1e9:,.1f} GB" if total >= 1e9 else f"{total / 1e6:,.1f} MB"
        console().print(
            f"data.verify=full: checking the sha256 of {len(files)} file(s), {amount} "
            "(reads every byte)"
        )
    if not full or size == 1:
        for path, layout, record in files:
            check_file(path, layout, size=record.get("size"),
                       sha256=record.get("sha256") if full else None)  # fmt: skip
        return
    import tensorflow as tf

    bad = np.zeros(len(files), np.float32)
    for i in range(rank, len(files), size):
        path, layout, record = files[i]
        try:
            check_file(path, layout, size=record.get("size"), sha256=record.get("sha256"))
        except UserError:
            bad[i] = 1.0
    agreed = np.asarray(world.allreduce_mean(tf.constant(bad), name="nvlm_data_verify"))
    for i in np.flatnonzero(agreed > 0):
        path, layout, record = files[int(i)]
        # Re-checked here so the message says what is wrong (one file, on every rank).
        check_file(path, layout, size=record.get("size"), sha256=record.get("sha256"))
        raise corrupt(path, "failed the check on another rank (does each node have its own copy?)")


def check_values(path: Path, arrays: Mapping[str, np.ndarray], bounds: Mapping[str, int],
                 first_row: int = 0, unit: str = "row") -> None:  # fmt: skip
    """Raise `corrupt(...)` when a dataset holds a value outside [0, bound) (`unit`s read from
    `first_row` on). Such a value is an index the model gathers with: TensorFlow fails on it
    steps later on a CPU and reads garbage on a GPU."""
    for name, bound in bounds.items():
        values = arrays.get(name)
        if values is None or values.size == 0:
            continue
        if values.min() >= 0 and values.max() < bound:
            continue
        flat = np.flatnonzero((values < 0) | (values >= bound))[0]
        where = np.unravel_index(flat, values.shape)
        raise corrupt(
            path,
            f"holds {name} {int(values[where])} outside [0, {bound}) at {unit} "
            f"{first_row + int(where[0]):,}",
        )


def shard_bounds(names, *, vocab_size: int, seq_len: int) -> dict[str, int]:
    """Dataset -> exclusive upper bound of its values in a pretraining shard (lower bounds are
    0): ids index the vocabulary, positions the sequence; the rest are 0/1 flags or segment
    ids (an index into a table of 2)."""
    bounds = {"input_ids": vocab_size, "masked_lm_ids": vocab_size,
              "masked_lm_positions": seq_len, "input_mask": 2, "segment_ids": 2,
              "next_sentence_labels": 2}  # fmt: skip
    return {k: v for k, v in bounds.items() if k in names}


def read_error(path: Path, exc: BaseException) -> UserError:
    """A shard that passed the start check but fails to read (changed or damaged since)."""
    return corrupt(path, f"could not be read ({_first_line(exc)})")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
