"""JSONL in, JSONL out, streaming (`nvlm predict --input FILE|-`): lines read lazily as bytes
(each decoded on its own, none held beyond `MAX_LINE_BYTES`), grouped into batches without
waiting for a full one, and one JSON line out per line in, in order, a line's error in its place.

    failed = run_pipeline(open_input("-"), 8, parse, handle)   # parse(number, line) -> item
                                                               # handle(items) -> results
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from nvlm.errors import UserError


def stream_batches(items: Iterator, batch_size: int) -> Iterator[list]:
    """Group items into batches WITHOUT waiting for a full batch: each batch is what has
    arrived by the time the previous one is done (at least one item). A reader thread feeds a
    queue, so answers stream out while input is still arriving on a pipe."""
    import threading
    from queue import Empty, Queue

    q: Queue = Queue(maxsize=4 * batch_size)
    done = object()

    def read() -> None:
        try:
            for item in items:
                q.put(item)
        except BaseException as exc:  # surfaced in the consumer
            q.put(exc)
        q.put(done)

    threading.Thread(target=read, daemon=True).start()
    while True:
        first = q.get()
        if first is done:
            return
        if isinstance(first, BaseException):
            raise first
        batch, finished = [first], False
        while len(batch) < batch_size:
            try:
                item = q.get_nowait()
            except Empty:
                break
            if item is done:
                finished = True
                break
            if isinstance(item, BaseException):
                raise item
            batch.append(item)
        yield batch
        if finished:
            return


# Longest JSONL input line (bytes, newline excluded) that is answered; a longer one gets its
# own error object and the stream goes on. Memory grows linearly with a line's size (about
# 0.15 GB per MB of context with a tiny BERT, docs/squad.md), so this bounds what one line can
# take; 4 MiB is a few thousand pages of text.
MAX_LINE_BYTES = 4 * 1024 * 1024


class LineError(ValueError):
    """A line that cannot be read (not UTF-8, too long): reported in place, the stream goes on."""


def open_input(source: str) -> BinaryIO:
    """The byte stream of `--input` (a file or '-'), opened before the model is loaded so that
    a wrong path fails at once. Bytes, not text: each line is decoded on its own, so one line
    that is not UTF-8 becomes that line's error and not the end of the stream."""
    if source == "-":
        return sys.stdin.buffer
    path = Path(source)
    if not path.exists() or path.is_dir():  # a pipe (`--input <(...)`) is fine
        what = "is a directory" if path.is_dir() else "does not exist"
        raise UserError(f"--input {source} {what} (pass a file or - for stdin)")
    try:
        return path.open("rb")
    except OSError as exc:
        raise UserError(f"cannot read --input {source}: {exc.strerror}") from None


def read_lines(
    stream: BinaryIO, limit: int = MAX_LINE_BYTES
) -> Iterator[tuple[int, str | LineError]]:
    """(line number, text or LineError) per non-blank line, read lazily so output can stream.
    A line is never held beyond `limit` bytes: the rest of a longer one is skipped."""
    number = 0
    while True:
        raw = stream.readline(limit + 1)
        if not raw:
            return
        number += 1
        if len(raw) > limit and not raw.endswith(b"\n"):
            size = len(raw)
            while raw and not raw.endswith(b"\n"):  # skip to the end of the line
                raw = stream.readline(1 << 20)
                size += len(raw)
            size -= int(raw.endswith(b"\n"))
            yield (
                number,
                LineError(
                    f"the line has {size} bytes, over the limit of {limit} bytes per line "
                    "(split the context; see docs/squad.md)"
                ),
            )
            continue
        if number == 1:
            raw = raw.removeprefix(b"\xef\xbb\xbf")  # a UTF-8 byte-order mark
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield (
                number,
                LineError(
                    f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at byte {exc.start + 1} of the "
                    "line; convert the input to UTF-8)"
                ),
            )
            continue
        if line.strip():
            yield number, line.rstrip("\r\n")


def string_field(obj: dict, key: str, *, required: bool = True) -> str | None:
    """obj[key] as non-empty text, or a ValueError that says what is wrong with it."""
    if key not in obj or obj[key] is None:
        if required:
            raise ValueError(f"missing {key!r}")
        return None
    value = obj[key]
    if not isinstance(value, str):
        raise ValueError(f"{key!r} must be a string, not {json_type(value)} ({_clip(value)})")
    if not value.strip():
        raise ValueError(f"{key!r} is empty")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate escape such as "\ud800"
        raise ValueError(
            f"{key!r} holds an unpaired surrogate escape ({value[exc.start]!a}), not text"
        ) from None
    return value


def json_type(value) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _clip(value, limit: int = 40) -> str:
    text = json.dumps(value)
    return text if len(text) <= limit else text[:limit] + "..."


def run_pipeline(stream: BinaryIO, batch_size: int, parse, handle) -> int:
    """Stream `stream` through `handle` in batches; one JSON line out per line in, errors in
    place (with the line number). Returns the number of failed lines."""
    from nvlm.report import emit_jsonl

    failed = 0
    for batch in stream_batches(read_lines(stream), batch_size):
        items, numbers, errors = [], [], {}
        for number, line in batch:
            try:
                if isinstance(line, LineError):
                    raise line
                items.append(parse(number, line))
                numbers.append(number)
            except ValueError as exc:  # json.JSONDecodeError is one
                errors[number] = f"line {number}: {exc}"
        results = dict(zip(numbers, _handle(handle, items, numbers, errors), strict=True))
        for number, _ in batch:
            if number in errors:
                failed += 1
                emit_jsonl({"line": number, "error": errors[number]})
            else:
                emit_jsonl(results[number])
    return failed


def _handle(handle, items: list, numbers: list[int], errors: dict[int, str]) -> list:
    """handle(items); when the batch is refused (a UserError: bad input that only the model's
    side can see, e.g. a context without a single known token), each item again on its own,
    so that one bad line costs its own answer only. Refused items get an error in `errors`
    and None in the result."""
    if not items:
        return []
    try:
        return list(handle(items))
    except UserError as exc:
        if len(items) == 1:
            errors[numbers[0]] = f"line {numbers[0]}: {exc}"
            return [None]
    results = []
    for item, number in zip(items, numbers, strict=True):
        try:
            [result] = handle([item])
        except UserError as exc:
            errors[number] = f"line {number}: {exc}"
            result = None
        results.append(result)
    return results
