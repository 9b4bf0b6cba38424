"""The fields every `nvlm benchmark` record carries besides its figures: the machine, the
library versions, the command line and the date, and `--out FILE` (JSONL, appended)."""

from __future__ import annotations

import json
import os
import platform
import shlex
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from nvlm.errors import UserError

MARK = "nvlm_benchmark"  # a record's first key: how `--out` knows a file is ours to append to


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name, dist in (
        ("nvlm", "nvlm"),
        ("tensorflow", "tensorflow-cpu"),
        ("keras", "keras"),
        ("horovod", "horovod"),
    ):
        try:
            out[name] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[name] = None
    if out["tensorflow"] is None:  # the GPU wheel
        try:
            out["tensorflow"] = metadata.version("tensorflow")
        except metadata.PackageNotFoundError:
            pass
    return out


def machine() -> dict[str, Any]:
    from nvlm.train.peak import machine as peak_machine

    m = dict(peak_machine())
    m["host"] = platform.node()
    m["gpu_count"] = len(m.get("gpus") or [])
    return m


def command_line() -> str:
    return shlex.join(["nvlm", *sys.argv[1:]])


def base_record(kind: str) -> dict[str, Any]:
    return {
        MARK: 1,
        "kind": kind,
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": command_line(),
        "machine": machine(),
        "versions": versions(),
    }


def check_out(path: Path | None, inputs: dict[str, Path | None]) -> None:
    """`--out FILE` before anything runs: a new file, or a JSONL file of nvlm benchmark records
    (appended to); never another file, never an input."""
    if path is None:
        return
    from nvlm.outputs import refuse_inputs

    refuse_inputs(path, {k: v for k, v in inputs.items() if v is not None}, option="--out")
    if path.is_dir():
        raise UserError(f"--out {path} is a directory; give a file name (records are appended)")
    if not path.exists() or path.stat().st_size == 0:
        parent = path.parent if str(path.parent) else Path(".")
        if not parent.is_dir():
            raise UserError(f"--out {path}: directory {parent} does not exist (create it first)")
        if not os.access(parent, os.W_OK):
            raise UserError(f"--out {path}: cannot write in {parent} (choose another place)")
        return
    try:
        with path.open("rb") as f:
            first = f.readline(1 << 20)
        ours = json.loads(first).get(MARK) is not None
    except (OSError, ValueError, AttributeError):
        ours = False
    if not ours:
        raise UserError(
            f"--out {path} exists and is not a file of nvlm benchmark records; nvlm appends "
            "only to its own (choose another name)"
        )


def append(path: Path, records: list[dict[str, Any]]) -> None:
    """Append whole lines in one write (O_APPEND), flushed to disk: a concurrent run or a crash
    never leaves half a record."""
    if not records:
        return
    data = "".join(json.dumps(r, default=_plain) + "\n" for r in records).encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def _plain(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    return str(obj)
