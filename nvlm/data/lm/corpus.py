"""`nvlm data lm`: a word-level language-modelling corpus as token-id streams.

    build_lm_corpus({"train": a, "valid": b, "test": c}, out)  ->  out/
        vocab.txt        one token per line, most frequent first (see nvlm.data.lm.vocab)
        train.hdf5       dataset `ids`: int32 [tokens], the split as ONE contiguous stream
        valid.hdf5, test.hdf5
        manifest.json    kind "lm": vocab size/sha256, counts, sha256 per file (written last)

The streams do not depend on the batch size, the sequence length or the number of GPUs: the
training input (nvlm.data.lm.stream) cuts them into per-row streams at run time, as the
Transformer-XL reference does. Every input is checked before anything is written; the files are
made in `out/.nvlm-partial/` and moved into place when all are complete, the manifest last, so
a reader never sees half a directory and an error leaves none behind.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from nvlm.data import integrity
from nvlm.data.checksum import sha256_file
from nvlm.data.lm.vocab import LMVocab, count_words
from nvlm.data.manifest import read_manifest, write_manifest
from nvlm.data.pretraining.h5_output import H5Output
from nvlm.data.pretraining.shard_format import MANIFEST, PARTIAL_DIR
from nvlm.errors import UserError
from nvlm.outputs import check_writable_dir, refuse_inputs, write_text
from nvlm.run_dir import VOCAB

KIND_LM = "lm"
FORMAT_VERSION = 1
SPLITS = ("train", "valid", "test")
VOCAB_FILE = VOCAB
IDS = "ids"
STAGE_DIR = PARTIAL_DIR  # files being made, moved into place when all are complete
_FLUSH = 1 << 20  # tokens per HDF5 append (bounded memory for any corpus size)


def split_file(split: str) -> str:
    return f"{split}.hdf5"


def read_lines(path: Path) -> Iterator[str]:
    """Lines of a UTF-8 text file; a decoding error names the file and the byte."""
    with open(path, "rb") as handle:
        offset = 0
        for raw in handle:
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise UserError(
                    f"{path} is not UTF-8 text (byte {offset + exc.start})",
                    hint="convert it to UTF-8 first",
                ) from None
            offset += len(raw)


def _check_input(split: str, path: Path) -> None:
    """Exists, is a file, holds a word: checked for every split before anything is written."""
    if path.is_dir():
        example = path / f"wiki.{split}.tokens"
        raise UserError(
            f"--{split} {path} is a directory, not a text file",
            hint=f"pass {example}" if example.is_file() else "pass the text file itself",
        )
    if not path.is_file():
        raise UserError(f"--{split} {path} does not exist (pass a text file, one line per line)")
    # Stops at the first line with a word: cheap for any real split.
    if not any(line.strip() for line in read_lines(path)):
        raise UserError(f"--{split} {path} holds no words (an empty split)")


def _check_out(out: Path, inputs: dict[str, Path], vocab: Path | None, overwrite: bool) -> None:
    """`out` is not an input, is writable, and holds no file of ours that nvlm did not make."""
    refuse_inputs(out, {**{f"--{s}": p for s, p in inputs.items()}, "--vocab": vocab})
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file, not a directory (choose another --out)")
    check_writable_dir(out)
    if overwrite or is_lm_directory(out):
        return  # our own files (or, when told, anyone's) are replaced
    names = [VOCAB_FILE, MANIFEST, *(split_file(s) for s in SPLITS)]
    foreign = [n for n in names if (out / n).exists()]
    if foreign:
        raise UserError(
            f"--out {out} already holds {', '.join(foreign)}, not made by `nvlm data lm`",
            hint="add --overwrite to replace them, or choose another --out",
        )


def build_lm_corpus(
    inputs: dict[str, Path],
    out: Path,
    *,
    vocab: Path | None = None,
    min_freq: int = 1,
    max_size: int | None = None,
    overwrite: bool = False,
    on_split: Callable[[str], None] | None = None,
) -> dict:
    """Tokenize `inputs` ({split: text file}, "train" required) into `out`; return a summary.

    Every input is checked before anything is written; the files are made in a staging
    directory inside `out` and moved into place once all of them are complete (the manifest
    last), so an error leaves `out` as it was.
    """
    t0 = time.perf_counter()
    if "train" not in inputs:
        raise UserError("--train is required (the vocabulary comes from it)")
    if min_freq < 1:
        raise UserError(f"--min-freq {min_freq} must be >= 1")
    if max_size is not None and max_size < 2:
        raise UserError(f"--max-size {max_size} must be >= 2 (<eos> and <unk> are always in)")
    inputs = {split: Path(path) for split, path in inputs.items()}
    for split, path in inputs.items():
        _check_input(split, path)
    out = Path(out)
    _check_out(out, inputs, vocab, overwrite)

    if vocab is not None:
        lm_vocab = LMVocab.load(Path(vocab))
        vocab_source = str(Path(vocab).absolute())
    else:
        if on_split:
            on_split("counting train")
        counts, _ = count_words(read_lines(inputs["train"]))
        lm_vocab = LMVocab.from_counts(counts, min_freq=min_freq, max_size=max_size)
        vocab_source = "train"

    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    stage = out / STAGE_DIR
    shutil.rmtree(stage, ignore_errors=True)  # left by a killed run
    stage.mkdir()
    try:
        manifest = _write_staged(stage, inputs, lm_vocab, vocab_source, min_freq, max_size,
                                 on_split)  # fmt: skip
        # An old manifest must not describe the files being replaced, nor list a split that
        # this run does not make.
        (out / MANIFEST).unlink(missing_ok=True)
        for split in SPLITS:
            if split not in inputs:
                (out / split_file(split)).unlink(missing_ok=True)
        for name in [VOCAB_FILE, *(split_file(s) for s in manifest["splits"])]:
            os.replace(stage / name, out / name)
        write_manifest(out, manifest)
    except BaseException:
        if created:
            shutil.rmtree(out, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    splits = manifest["splits"]
    summary = {
        "out": str(out),
        "vocab_size": len(lm_vocab),
        "vocab_source": vocab_source,
        "seconds": round(time.perf_counter() - t0, 2),
    }
    for split, rec in splits.items():
        summary[f"{split}_tokens"] = rec["tokens"]
        summary[f"{split}_unk"] = rec["unk"]
    return summary


def _write_staged(
    stage: Path, inputs: dict[str, Path], lm_vocab: LMVocab, vocab_source: str,
    min_freq: int, max_size: int | None, on_split: Callable[[str], None] | None,
) -> dict:  # fmt: skip
    """Write the vocab and every split into `stage`; return the manifest describing them."""
    write_text(stage / VOCAB_FILE, lm_vocab.text())
    char_len = lm_vocab.char_lengths()
    splits, sources = {}, []
    for split in SPLITS:
        if split not in inputs:
            continue
        path = inputs[split]
        if on_split:
            on_split(f"encoding {split}")
        target = stage / split_file(split)
        counts = _encode_split(path, target, lm_vocab, char_len, stage.parent / target.name)
        if counts["words"] == 0:  # only <eos>: lines of spaces the check above let through
            raise UserError(f"--{split} {path} holds no words (an empty split)")
        # The size lets every training start check the file cheaply (nvlm.data.integrity).
        record = {"file": target.name, "sha256": sha256_file(target), "size": target.stat().st_size}
        splits[split] = {**record, **counts}
        sources.append(
            {"split": split, "path": str(path.absolute()), "size": path.stat().st_size,
             "sha256": sha256_file(path)}
        )  # fmt: skip
    return {
        "kind": KIND_LM,
        "format_version": FORMAT_VERSION,
        "parameters": {"min_freq": min_freq, "max_size": max_size, "add_eos": True},
        "vocab": {
            "file": VOCAB_FILE,
            "size": len(lm_vocab),
            "sha256": sha256_file(stage / VOCAB_FILE),
            "source": vocab_source,
            "eos_id": lm_vocab.eos_id,
            "unk_id": lm_vocab.unk_id,
        },
        "inputs": sources,
        "splits": splits,
        "counts": {"tokens": sum(s["tokens"] for s in splits.values())},
    }


def _encode_split(
    path: Path, target: Path, vocab: LMVocab, char_len: np.ndarray, shown: Path
) -> dict:
    lines = words = unk = chars = 0
    size = max(1, path.stat().st_size)
    out = H5Output(target, shown)
    try:
        dset = out.file.create_dataset(
            IDS, shape=(0,), maxshape=(None,), dtype="int32", chunks=(min(_FLUSH, 65536),)
        )
        buffer: list[int] = []

        def flush() -> None:
            nonlocal chars
            if buffer:
                arr = np.asarray(buffer, dtype=np.int32)
                n = dset.shape[0]
                dset.resize((n + len(arr),))
                dset[n:] = arr
                chars += int(char_len[arr].sum())
                buffer.clear()
                # The characters encoded so far, against the file's bytes, size the whole
                # stream (4 bytes a token) for the message of a full disk.
                out.check(needed=int(4 * dset.shape[0] * size / max(1, min(chars, size))))

        for line in read_lines(path):
            ids = vocab.encode_line(line)
            buffer.extend(ids)
            lines += 1
            words += len(ids) - 1
            unk += ids.count(vocab.unk_id)
            if len(buffer) >= _FLUSH:
                flush()
        flush()
        tokens = int(dset.shape[0])
        out.finish()
    except BaseException:
        out.abort()
        raise
    return {"tokens": tokens, "lines": lines, "words": words, "unk": unk, "characters": chars}


# --- reading ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LMData:
    """An `nvlm data lm` directory, as the model plugins read it."""

    directory: Path
    manifest: dict

    @property
    def vocab_path(self) -> Path:
        return self.directory / self.manifest["vocab"]["file"]

    @property
    def vocab_size(self) -> int:
        return int(self.manifest["vocab"]["size"])

    @property
    def vocab_sha256(self) -> str:
        return self.manifest["vocab"]["sha256"]

    def vocab(self) -> LMVocab:
        return LMVocab.load(self.vocab_path)

    def split_info(self, split: str) -> dict:
        splits = self.manifest["splits"]
        if split not in splits:
            have = ", ".join(splits) or "none"
            raise UserError(
                f"{self.directory} has no {split} split (it has: {have}; "
                f"rebuild it with nvlm data lm --{split} FILE)"
            )
        return splits[split]

    def check(self, splits=SPLITS, *, full: bool = False, world=None) -> None:
        """The files of `splits` against the manifest: size and HDF5 layout, and with `full`
        their sha256 (nvlm.data.integrity)."""
        files = []
        for split in splits:
            rec = self.split_info(split)
            layout = {IDS: (np.dtype(np.int32), (int(rec["tokens"]),))}
            files.append((self.directory / rec["file"], layout, rec))
        integrity.check_files(files, full=full, world=world)

    def load(self, split: str) -> np.ndarray:
        """The whole split as one int32 array (WikiText-103 train: 103M tokens, 412 MB); a
        damaged file or an id outside the vocabulary ends here, naming the file."""
        info = self.split_info(split)
        path = self.directory / info["file"]
        if not path.is_file():
            raise UserError(f"{path} is missing (re-run nvlm data lm, or nvlm data verify)")
        try:
            with h5py.File(path, "r") as f:
                ids = np.asarray(f[IDS][:], dtype=np.int32)
        except (OSError, KeyError, RuntimeError) as exc:
            raise integrity.read_error(path, exc) from None
        if ids.size == 0:
            raise UserError(f"the {split} split of {self.directory} is empty")
        # One pass over the array: milliseconds for WikiText-103's 103M ids.
        integrity.check_values(path, {IDS: ids}, {IDS: self.vocab_size}, unit="token")
        return ids


def is_lm_directory(path: Path) -> bool:
    path = Path(path)
    if not (path / MANIFEST).is_file():
        return False
    try:
        return read_manifest(path).get("kind") == KIND_LM
    except UserError:
        return False


def read_lm_directory(path: Path) -> LMData:
    path = Path(path)
    if not path.exists():
        raise UserError(f"--data {path} does not exist (make it with nvlm data lm)")
    manifest = read_manifest(path)
    if manifest.get("kind") != KIND_LM:
        raise UserError(
            f"{path} holds {manifest.get('kind')!r} data, not a language-modelling corpus "
            "(make one with nvlm data lm --train ... --out DIR)"
        )
    return LMData(path, manifest)
