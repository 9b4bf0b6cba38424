"""Streaming UTF-8 text input: lines and documents, in bounded memory.

Input format for every corpus command: one sentence per line, documents separated by blank
lines (a file's end also ends a document). Bytes that are not UTF-8 stop the run with the file
name and the byte offset of the first bad byte, unless errors="replace" (U+FFFD is put in their
place, as Python's codec does).
"""

from __future__ import annotations

import codecs
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from nvlm.errors import UserError

# 4 MiB: large enough that the per-block Python overhead vanishes, small enough to stay bounded.
BLOCK_BYTES = 4 << 20
ERROR_MODES = ("strict", "replace")
_BOM = codecs.BOM_UTF8


def iter_lines(
    path: str | os.PathLike[str],
    errors: str = "strict",
    on_block: Callable[[bytes], None] | None = None,
) -> Iterator[str]:
    """Yield the lines of a UTF-8 file without their line ends, reading it in blocks.

    `on_block` sees every raw block (the pre-pass uses it to hash the file while reading it once).
    """
    if errors not in ERROR_MODES:
        raise UserError(f"--errors must be one of {', '.join(ERROR_MODES)}, not {errors!r}")
    decoder = codecs.getincrementaldecoder("utf-8")(errors=errors)
    consumed = 0  # bytes of the file handed to the decoder so far
    pending = ""
    with open(path, "rb") as handle:
        first = True
        while True:
            block = handle.read(BLOCK_BYTES)
            if on_block is not None and block:
                on_block(block)
            final = not block
            data = block
            skip = 0
            if first and data.startswith(_BOM):
                # A BOM is not text; editors on Windows add it. Offsets still count its bytes.
                data, skip = data[len(_BOM) :], len(_BOM)
            first = False
            # Bytes the decoder keeps from the previous block (a split multi-byte character)
            # precede `data`, so an error offset is relative to their start.
            base = consumed + skip - len(decoder.getstate()[0])
            try:
                text = decoder.decode(data, final=final)
            except UnicodeDecodeError as exc:
                raise UserError(
                    f"{path}: undecodable bytes at byte offset {base + exc.start} (not UTF-8)",
                    hint="fix the file, or pass --errors replace to substitute U+FFFD and continue",
                ) from None
            consumed += len(block)
            if text:
                lines = (pending + text).split("\n")
                pending = lines.pop()
                for line in lines:
                    yield line[:-1] if line.endswith("\r") else line
            if final:
                break
    if pending:
        yield pending[:-1] if pending.endswith("\r") else pending


def iter_documents(paths: list[Path], errors: str = "strict") -> Iterator[list[str]]:
    """Yield each document as its list of non-blank, stripped lines, across files in order."""
    for path in paths:
        doc: list[str] = []
        for line in iter_lines(path, errors):
            text = line.strip()
            if text:
                doc.append(text)
            elif doc:
                yield doc
                doc = []
        if doc:
            yield doc
