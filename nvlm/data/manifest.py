"""`manifest.json`: what a data directory holds and how it was made.

Every directory nvlm writes has one, written atomically and last, with a `kind` that tells
readers (`nvlm data verify`, the training input pipeline) which format to expect.
"""

from __future__ import annotations

from pathlib import Path

from nvlm.data.pretraining.shard_format import MANIFEST
from nvlm.errors import UserError
from nvlm.outputs import read_json, write_json

FORMAT_VERSION = 1


def read_manifest(directory: Path, *, made_by: str = "an `nvlm data` command") -> dict:
    """The manifest of a data directory: the one reader of manifest.json in nvlm.

    `made_by` names the command that makes such a directory, for the one-line errors.
    """
    path = directory / MANIFEST
    if not directory.is_dir():
        raise UserError(f"not a directory: {directory}")
    if not path.is_file():
        raise UserError(
            f"{directory} has no {MANIFEST}",
            hint=f"point at a directory made by {made_by} that finished "
            "(an interrupted one: re-run the same command to finish it)",
        )
    manifest = read_json(path, fix=f"re-create it with {made_by}", object_only=False)
    if not isinstance(manifest, dict) or "kind" not in manifest:
        raise UserError(f"{path} has no `kind`; it was not written by nvlm")
    return manifest


def write_manifest(directory: Path, manifest: dict) -> None:
    write_json(directory / MANIFEST, manifest)


def identity_difference(old: dict, new: dict) -> str | None:
    """Name the first thing that differs between two run identities, or None if they match.

    An identity is {"parameters": {...}, "inputs": [{sha256, size}...], "vocab": {sha256}}.
    """
    old_params, new_params = old.get("parameters", {}), new["parameters"]
    for key, value in new_params.items():
        if old_params.get(key) != value:
            return f"{key}={old_params.get(key)!r} (now {value!r})"
    old_inputs = [(i["sha256"], i["size"]) for i in old.get("inputs", [])]
    new_inputs = [(i["sha256"], i["size"]) for i in new["inputs"]]
    if old_inputs != new_inputs:
        if len(old_inputs) != len(new_inputs):
            return f"{len(old_inputs)} input file(s) (now {len(new_inputs)})"
        n = next(i for i, (a, b) in enumerate(zip(old_inputs, new_inputs, strict=True)) if a != b)
        return f"other content in input {n + 1} ({new['inputs'][n]['path']})"
    if old.get("vocab", {}).get("sha256") != new["vocab"]["sha256"]:
        return "another vocab (sha256 differs)"
    return None
