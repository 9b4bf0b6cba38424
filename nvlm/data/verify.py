"""`nvlm data verify`: re-check a data directory against its manifest.

Dispatches on the manifest's `kind`; each kind has one checker returning the list of bad
files with their problems. Checks read shards in blocks (bounded memory for any shard size).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np

from nvlm.data.checksum import sha256_file
from nvlm.data.lm.corpus import KIND_LM
from nvlm.data.lm.verify import verify_lm_directory
from nvlm.data.manifest import read_manifest
from nvlm.data.pretraining.shard_format import KIND_PRETRAINING, schema
from nvlm.errors import UserError

_BLOCK_ROWS = 65536


def verify_directory(directory: Path) -> dict:
    """Return {"kind", "directory", "files", "bad": [{"name", "problems"}], "ok", ...}."""
    manifest = read_manifest(directory)
    checker = _CHECKERS.get(manifest["kind"])
    if checker is None:
        raise UserError(
            f"{directory} holds data of kind {manifest['kind']!r}, which this nvlm cannot verify",
            hint=f"known kinds: {', '.join(sorted(_CHECKERS))}",
        )
    report = checker(directory, manifest)
    report["ok"] = not report["bad"]
    return report


def _verify_pretraining(directory: Path, manifest: dict) -> dict:
    params = manifest["parameters"]
    model = manifest["model"]
    expected = schema(model, params["seq_len"], params["max_predictions"])
    special = manifest["vocab"]["special_ids"]
    vocab_size = manifest["vocab"]["size"]
    bad = []
    instances = masked = 0
    for record in manifest["shards"]:
        problems, counts = _check_shard(
            directory / record["name"], record, expected, model, special, vocab_size
        )
        instances += counts.get("instances", 0)
        masked += counts.get("masked", 0)
        if problems:
            bad.append({"name": record["name"], "problems": problems})
    listed = {r["name"] for r in manifest["shards"]}
    extra = sorted(p.name for p in directory.glob("shard-*.hdf5") if p.name not in listed)
    totals = manifest["counts"]
    count_problems = []
    if not bad and instances != totals["instances"]:
        count_problems.append(
            f"shards hold {instances} instances, manifest counts {totals['instances']}"
        )
    if not bad and model == "bert" and masked != totals["masked_tokens"]:
        count_problems.append(
            f"shards hold {masked} masked tokens, manifest counts {totals['masked_tokens']}"
        )
    if count_problems:
        bad.append({"name": "manifest.json", "problems": count_problems})
    return {
        "kind": manifest["kind"],
        "model": model,
        "directory": str(directory),
        "files": len(manifest["shards"]),
        "instances": instances,
        "masked_tokens": masked,
        "unlisted_files": extra,
        "bad": bad,
    }


def _check_shard(
    path: Path, record: dict, expected: dict, model: str, special: dict, vocab_size: int
):
    if not path.is_file():
        return ["missing"], {}
    problems = []
    if sha256_file(path) != record["sha256"]:
        problems.append("sha256 differs from the manifest")
    try:
        handle = h5py.File(path, "r")
    except OSError:
        return [*problems, "not a readable HDF5 file"], {}
    counts = {"instances": 0, "masked": 0}
    with handle as f:
        names = set(f.keys())
        if names != set(expected):
            missing = sorted(set(expected) - names)
            extra = sorted(names - set(expected))
            return [*problems, f"datasets differ (missing {missing}, unexpected {extra})"], counts
        n = record["instances"]
        for name, (dtype, shape) in expected.items():
            dset = f[name]
            if dset.dtype != dtype:
                problems.append(f"{name}: dtype {dset.dtype}, expected {dtype}")
            if dset.shape != (n, *shape):
                problems.append(f"{name}: shape {dset.shape}, expected {(n, *shape)}")
        if problems and any("shape" in p or "dtype" in p for p in problems):
            return problems, counts
        counts["instances"] = n
        for start in range(0, n, _BLOCK_ROWS):
            block = {name: f[name][start : start + _BLOCK_ROWS] for name in expected}
            for problem in _check_values(block, model, special, vocab_size):
                if problem not in problems:
                    problems.append(problem)
            if model == "bert":
                counts["masked"] += int(np.count_nonzero(block["masked_lm_positions"]))
    return problems, counts


def _check_values(b: dict, model: str, special: dict, vocab_size: int) -> list[str]:
    """Structural checks of one block of rows; each problem names the dataset and the rule."""
    out = []
    ids, mask, seg = b["input_ids"], b["input_mask"], b["segment_ids"]
    rows = np.arange(len(ids))
    pad, cls, sep, msk = special["[PAD]"], special["[CLS]"], special["[SEP]"], special["[MASK]"]

    def fail(rule: str, bad: np.ndarray) -> None:
        if bad.any():
            out.append(f"{rule} ({int(np.count_nonzero(bad))} case(s))")

    fail("input_mask: values other than 0/1", (mask != 0) & (mask != 1))
    fail("input_mask: not ones then zeros", mask[:, 1:] > mask[:, :-1])
    n = mask.astype(np.int64).sum(axis=1)
    fail("input_mask: too few real tokens", n < (5 if model == "bert" else 3))
    if out:
        return out  # the remaining rules index rows by their length n
    fail(f"input_ids: values outside [0, {vocab_size})", (ids < 0) | (ids >= vocab_size))
    real = mask.astype(bool)
    fail("input_ids: first token is not [CLS]", ids[:, 0] != cls)
    fail("input_ids: last real token is not [SEP]", ids[rows, n - 1] != sep)
    fail("input_ids: padding is not [PAD]", (ids != pad) & ~real)
    fail("segment_ids: values other than 0/1", (seg != 0) & (seg != 1))
    fail("segment_ids: non-zero on padding", (seg != 0) & ~real)
    fail("segment_ids: 1 before 0 inside a sequence", (seg[:, 1:] < seg[:, :-1]) & real[:, 1:])
    seg0 = ((seg == 0) & real).sum(axis=1)
    first_sep = seg0 - 1
    fail("input_ids: no [SEP] closing segment A", ids[rows, first_sep] != sep)
    if model != "bert":
        return out
    fail("segment_ids: sentence B is empty", n - seg0 < 2)
    pos, lm_ids, labels = b["masked_lm_positions"], b["masked_lm_ids"], b["next_sentence_labels"]
    valid = pos != 0
    fail("masked_lm_positions: padding zeros before positions", valid[:, 1:] > valid[:, :-1])
    fail("masked_lm_positions: no masked position", ~valid[:, 0])
    fail("masked_lm_positions: not ascending", (pos[:, 1:] <= pos[:, :-1]) & valid[:, 1:])
    fail(
        "masked_lm_positions: outside the real sequence", valid & ((pos < 0) | (pos >= n[:, None]))
    )
    fail(
        "masked_lm_positions: on [SEP]",
        valid & ((pos == first_sep[:, None]) | (pos == (n - 1)[:, None])),
    )
    fail("masked_lm_ids: non-zero padding", ~valid & (lm_ids != 0))
    fail(
        f"masked_lm_ids: values outside [0, {vocab_size})",
        valid & ((lm_ids < 0) | (lm_ids >= vocab_size)),
    )
    fail(
        "masked_lm_ids: a special token was masked",
        valid & np.isin(lm_ids, [pad, cls, sep, msk]),
    )
    fail("next_sentence_labels: values other than 0/1", (labels != 0) & (labels != 1))
    return out


_CHECKERS: dict[str, Callable[[Path, dict], dict]] = {
    KIND_PRETRAINING: _verify_pretraining,
    KIND_LM: verify_lm_directory,
}


def refuse_bad(report: dict, directory: Path) -> None:
    """Raise a `UserError` naming a few bad files of `report` and how to rebuild them."""
    if report["bad"]:
        raise UserError(
            f"{len(report['bad'])} of {report['files']} shard(s) in {directory} are bad: "
            + bad_summary(report["bad"]),
            hint=report.get(
                "rebuild_hint", "re-run the same `nvlm data pretraining` command to rebuild them"
            ),
        )


def bad_summary(bad: list[dict], files: int = 4, problems: int = 2) -> str:
    """`name: problem; problem, name: ...`, a few of each: the error line stays readable when
    stdout (the full list) goes to a pipe."""
    parts = []
    for entry in bad[:files]:
        shown = entry["problems"][:problems]
        more = len(entry["problems"]) - len(shown)
        parts.append(f"{entry['name']}: " + "; ".join(shown) + (f" (+{more} more)" if more else ""))
    if len(bad) > files:
        parts.append(f"and {len(bad) - files} more")
    return ", ".join(parts)
