"""Input paths: expansion of FILES/DIRS/GLOBS, and the pre-pass that checks and fingerprints them.

The pre-pass reads every input once before anything is written: it hashes the file (the manifest
records sha256 so that a re-run can tell same from changed inputs), checks that it decodes, and
counts documents (so a shard count the corpus cannot fill is refused up front).
"""

from __future__ import annotations

import glob
import hashlib
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from nvlm.data.text_reader import iter_lines
from nvlm.errors import UserError
from nvlm.outputs import is_within

_GLOB_CHARS = set("*?[")


@dataclass(frozen=True)
class InputFile:
    """One input file as the manifest records it."""

    path: str
    size: int
    sha256: str
    documents: int

    def to_json(self) -> dict:
        return asdict(self)


def expand_inputs(
    specs: list[str] | list[Path], *, exclude: Path | None = None, option: str = "--out"
) -> list[Path]:
    """Files named directly, every file under a directory (sorted), or the matches of a glob.

    The order is part of the output's identity (documents are numbered in input order), so
    directories and globs are sorted and duplicates are dropped. Files under `exclude` (the
    command's output directory, when it lies inside an input directory) are skipped: a command
    never reads its own output as input.
    """
    if not specs:
        raise UserError("no --input given", hint="pass one or more files, directories or globs")

    def wanted(path: str | Path) -> bool:
        return exclude is None or not is_within(path, exclude)

    out: list[Path] = []
    for spec in map(str, specs):
        if _GLOB_CHARS & set(spec) and not os.path.exists(spec):
            matches = sorted(
                p for p in glob.glob(spec, recursive=True) if os.path.isfile(p) and wanted(p)
            )
            if not matches:
                raise UserError(f"no input file matches {spec!r}")
            out.extend(Path(p) for p in matches)
        elif os.path.isdir(spec):
            files = sorted(
                p
                for p in Path(spec).rglob("*")
                if p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(spec).parts)
                and wanted(p)
            )
            if not files:
                inside = f" outside {option} {exclude}" if exclude is not None else ""
                raise UserError(f"input directory {spec} holds no files{inside}")
            out.extend(files)
        elif os.path.isfile(spec):
            out.append(Path(spec))
        else:
            raise UserError(f"input not found: {spec}", hint="check the --input path")
    seen: set[Path] = set()
    unique = []
    for path in out:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(path)
    return unique


def scan_input(path: Path, errors: str) -> InputFile:
    """Hash, decode-check and count the documents of one file (one streaming read)."""
    digest = hashlib.sha256()
    documents = 0
    in_doc = False
    for line in iter_lines(path, errors, on_block=digest.update):
        if line.strip():
            if not in_doc:
                documents += 1
                in_doc = True
        else:
            in_doc = False
    return InputFile(str(path.resolve()), path.stat().st_size, digest.hexdigest(), documents)


def scan_inputs(paths: list[Path], errors: str) -> list[InputFile]:
    files = [scan_input(p, errors) for p in paths]
    if sum(f.documents for f in files) == 0:
        names = ", ".join(str(p) for p in paths[:3]) + (" ..." if len(paths) > 3 else "")
        raise UserError(f"no text in the input ({names or 'no file'})",
                        hint="the files are empty or blank")  # fmt: skip
    return files
