"""`nvlm data lm`: a word-level language-modelling corpus as token-id streams.

    build_lm_corpus({"train": a, "valid": b, "test": c}, out)  ->  out/
        vocab.txt        one token per line, most frequent first (see nvlm.data.lm_vocab)
        train.hdf5       dataset `ids`: int32 [tokens], the split as ONE contiguous stream
        valid.hdf5, test.hdf5
        manifest.json    kind "lm": vocab size/sha256, counts, sha256 per file (written last)

The streams do not depend on the batch size, the sequence length or the number of GPUs: the
training input (nvlm.data.lm_stream) cuts them into per-row streams at run time, as the
Transformer-XL reference does. Every file is written under a temporary name and renamed, and
the manifest goes last, so a reader never sees half a directory.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from nvlm.data.atomic import atomic_write_text, sha256_file
from nvlm.data.lm_vocab import LMVocab, count_words
from nvlm.data.manifest import read_manifest, write_manifest
from nvlm.data.shard_format import MANIFEST
from nvlm.errors import UserError

KIND_LM = "lm"
FORMAT_VERSION = 1
SPLITS = ("train", "valid", "test")
VOCAB_FILE = "vocab.txt"
IDS = "ids"
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
    if not path.is_file():
        raise UserError(f"--{split} {path} does not exist (pass a text file, one line per line)")


def build_lm_corpus(
    inputs: dict[str, Path],
    out: Path,
    *,
    vocab: Path | None = None,
    min_freq: int = 1,
    max_size: int | None = None,
    on_split: Callable[[str], None] | None = None,
) -> dict:
    """Tokenize `inputs` ({split: text file}, "train" required) into `out`; return a summary."""
    t0 = time.perf_counter()
    if "train" not in inputs:
        raise UserError("--train is required (the vocabulary comes from it)")
    if min_freq < 1:
        raise UserError(f"--min-freq {min_freq} must be >= 1")
    if max_size is not None and max_size < 2:
        raise UserError(f"--max-size {max_size} must be >= 2 (<eos> and <unk> are always in)")
    for split, path in inputs.items():
        _check_input(split, Path(path))
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file, not a directory (choose another --out)")
    out.mkdir(parents=True, exist_ok=True)

    if vocab is not None:
        lm_vocab = LMVocab.load(Path(vocab))
        vocab_source = str(Path(vocab).absolute())
    else:
        if on_split:
            on_split("counting train")
        counts, _ = count_words(read_lines(Path(inputs["train"])))
        lm_vocab = LMVocab.from_counts(counts, min_freq=min_freq, max_size=max_size)
        vocab_source = "train"

    # An old manifest must not describe the files being replaced.
    (out / MANIFEST).unlink(missing_ok=True)
    atomic_write_text(out / VOCAB_FILE, lm_vocab.text())
    char_len = lm_vocab.char_lengths()
    splits, sources = {}, []
    for split in SPLITS:
        if split not in inputs:
            continue
        path = Path(inputs[split])
        if on_split:
            on_split(f"encoding {split}")
        counts = _encode_split(path, out / split_file(split), lm_vocab, char_len)
        if counts["words"] == 0:
            (out / split_file(split)).unlink(missing_ok=True)
            raise UserError(f"--{split} {path} holds no words (an empty split)")
        record = {"file": split_file(split), "sha256": sha256_file(out / split_file(split))}
        splits[split] = {**record, **counts}
        sources.append(
            {"split": split, "path": str(path.absolute()), "size": path.stat().st_size,
             "sha256": sha256_file(path)}
        )  # fmt: skip
    manifest = {
        "kind": KIND_LM,
        "format_version": FORMAT_VERSION,
        "parameters": {"min_freq": min_freq, "max_size": max_size, "add_eos": True},
        "vocab": {
            "file": VOCAB_FILE,
            "size": len(lm_vocab),
            "sha256": sha256_file(out / VOCAB_FILE),
            "source": vocab_source,
            "eos_id": lm_vocab.eos_id,
            "unk_id": lm_vocab.unk_id,
        },
        "inputs": sources,
        "splits": splits,
        "counts": {"tokens": sum(s["tokens"] for s in splits.values())},
    }
    write_manifest(out, manifest)
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


def _encode_split(path: Path, target: Path, vocab: LMVocab, char_len: np.ndarray) -> dict:
    tmp = target.with_name(target.name + ".tmp")
    lines = words = unk = chars = 0
    try:
        with h5py.File(tmp, "w") as f:
            dset = f.create_dataset(
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
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
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

    def load(self, split: str) -> np.ndarray:
        """The whole split as one int32 array (WikiText-103 train: 103M tokens, 412 MB)."""
        info = self.split_info(split)
        path = self.directory / info["file"]
        if not path.is_file():
            raise UserError(f"{path} is missing (re-run nvlm data lm, or nvlm data verify)")
        with h5py.File(path, "r") as f:
            ids = np.asarray(f[IDS][:], dtype=np.int32)
        if ids.size == 0:
            raise UserError(f"the {split} split of {self.directory} is empty")
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
