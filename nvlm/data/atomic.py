"""Atomic file writes and checksums.

A reader (or a resumed run) must never see a half-written file: everything is written to a
temporary name in the same directory and moved into place with `os.replace`, which is atomic on
POSIX file systems.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

from nvlm.outputs import write_bytes

_BLOCK = 1 << 20


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks (bounded memory for any size)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write `data` to `path` so that `path` holds either the old or the new content, never part
    (`nvlm.outputs.write_bytes`: a full disk is one line, nothing left behind)."""
    write_bytes(path, data)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2) + "\n")
