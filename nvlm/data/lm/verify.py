"""`nvlm data verify` for `nvlm data lm` directories (manifest kind "lm").

Checks the vocabulary (sha256, size, `<eos>`/`<unk>` ids) and every split file (sha256, one
int32 dataset `ids` of the counted length, ids inside the vocabulary, the `<eos>` and `<unk>`
counts), reading the streams in blocks so memory stays bounded.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from nvlm.data.checksum import sha256_file
from nvlm.data.lm.corpus import IDS, SPLITS, split_file
from nvlm.data.lm.vocab import LMVocab
from nvlm.errors import UserError

_BLOCK = 1 << 20


def verify_lm_directory(directory: Path, manifest: dict) -> dict:
    bad = []
    vocab_rec = manifest["vocab"]
    vocab_path = directory / vocab_rec["file"]
    vocab_problems = []
    vocab = None
    if not vocab_path.is_file():
        vocab_problems.append("missing")
    else:
        if sha256_file(vocab_path) != vocab_rec["sha256"]:
            vocab_problems.append("sha256 differs from the manifest")
        try:
            vocab = LMVocab.load(vocab_path)
        except UserError as exc:
            vocab_problems.append(str(exc))
        if vocab is not None:
            if len(vocab) != vocab_rec["size"]:
                vocab_problems.append(f"{len(vocab)} tokens, manifest says {vocab_rec['size']}")
            if (vocab.eos_id, vocab.unk_id) != (vocab_rec["eos_id"], vocab_rec["unk_id"]):
                vocab_problems.append("<eos>/<unk> ids differ from the manifest")
    if vocab_problems:
        bad.append({"name": vocab_rec["file"], "problems": vocab_problems})

    tokens = 0
    for rec in manifest["splits"].values():
        problems = _check_split(directory / rec["file"], rec, vocab_rec)
        if problems:
            bad.append({"name": rec["file"], "problems": problems})
        else:
            tokens += rec["tokens"]
    listed = {rec["file"] for rec in manifest["splits"].values()}
    unlisted = sorted(
        split_file(s) for s in SPLITS if (directory / split_file(s)).exists()
        and split_file(s) not in listed
    )  # fmt: skip
    return {
        "kind": manifest["kind"],
        "directory": str(directory),
        "files": len(manifest["splits"]) + 1,
        "tokens": tokens,
        "vocab_size": vocab_rec["size"],
        "unlisted_files": unlisted,
        "bad": bad,
        "rebuild_hint": "re-run the same `nvlm data lm` command to rebuild them",
    }


def _check_split(path: Path, rec: dict, vocab_rec: dict) -> list[str]:
    if not path.is_file():
        return ["missing"]
    problems = []
    if sha256_file(path) != rec["sha256"]:
        problems.append("sha256 differs from the manifest")
    try:
        handle = h5py.File(path, "r")
    except OSError:
        return [*problems, "not a readable HDF5 file"]
    with handle as f:
        if set(f.keys()) != {IDS}:
            return [*problems, f"datasets {sorted(f.keys())}, expected ['{IDS}']"]
        dset = f[IDS]
        if dset.dtype != np.int32 or dset.ndim != 1:
            return [*problems, f"{IDS}: {dset.dtype} {dset.shape}, expected int32 [tokens]"]
        if dset.shape[0] != rec["tokens"]:
            problems.append(f"{dset.shape[0]} tokens, manifest counts {rec['tokens']}")
        size, eos, unk = vocab_rec["size"], 0, 0
        outside = 0
        for start in range(0, dset.shape[0], _BLOCK):
            block = dset[start : start + _BLOCK]
            outside += int(np.count_nonzero((block < 0) | (block >= size)))
            eos += int(np.count_nonzero(block == vocab_rec["eos_id"]))
            unk += int(np.count_nonzero(block == vocab_rec["unk_id"]))
    if outside:
        problems.append(f"{IDS}: {outside} id(s) outside [0, {size})")
    if eos != rec["lines"]:
        problems.append(f"{eos} <eos> tokens, manifest counts {rec['lines']} lines")
    if unk != rec["unk"]:
        problems.append(f"{unk} <unk> tokens, manifest counts {rec['unk']}")
    return problems
