"""Read a labelled file for classification or regression: JSONL, CSV or TSV.

Layouts (the format comes from the suffix, or from `format=`):

    train.jsonl   {"text": "...", "text_pair": "...", "label": "pos"}    one object per line
    train.csv     text,text_pair,label    a header, then RFC 4180 rows (quotes allowed)
    train.tsv     text<TAB>label          a header, then rows split on tabs, NO quoting

TSV is read as GLUE's files are (`csv.QUOTE_NONE`): a `"` is an ordinary character, so a
sentence that starts with a quote is kept whole; a field cannot hold a tab or a newline.

Labels are strings or integers (1 and "1" are the same label); a classification file yields
label ids in the order of its `LabelSet`: first seen in the training file, or fixed by
`labels=` (`--labels a,b,c`). A dev file is read with the training set's `LabelSet`, and a label
it lacks is refused. `regression=True` reads a float target instead.

The file is streamed line by line (no whole-file parse), and every problem a user can fix is one
`UserError` naming the file and line.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nvlm.errors import UserError
from nvlm.tasks.classify.label_set import LabelSet

__all__ = [
    "ClassifyDataset",
    "Fields",
    "LabelSet",
    "detect_format",
    "read_classify",
    "read_records",
]

FORMATS = ("jsonl", "csv", "tsv")
_SUFFIXES = {".jsonl": "jsonl", ".json": "jsonl", ".csv": "csv", ".tsv": "tsv"}


@dataclass(frozen=True)
class ClassifyDataset:
    """The examples of one labelled file.

    Args:
        texts: the first text of each example.
        pairs: the second text of each example, or None for single texts.
        labels: int32 label ids (classification), else None.
        targets: float32 targets (regression), else None.
        label_set: the names of the label ids (None for regression).
        path: the file read.
        sha256: hex digest of its bytes.
    """

    texts: list[str]
    pairs: list[str] | None
    labels: np.ndarray | None
    targets: np.ndarray | None
    label_set: LabelSet | None
    path: str
    sha256: str

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def regression(self) -> bool:
        return self.targets is not None


def detect_format(path: str | os.PathLike[str], format: str | None = None) -> str:
    """`format` if given, else the one the suffix names; else one line asking for it."""
    if format is not None:
        if format not in FORMATS:
            raise UserError(f"unknown format {format!r}", hint=f"use one of {', '.join(FORMATS)}")
        return format
    found = _SUFFIXES.get(Path(path).suffix.lower())
    if found is None:
        raise UserError(
            f"cannot tell the format of {path} from its name",
            hint=f"name it .jsonl, .csv or .tsv, or give the format ({', '.join(FORMATS)})",
        )
    return found


def read_classify(
    path: str | os.PathLike[str],
    *,
    format: str | None = None,
    text_field: str = "text",
    pair_field: str | None = None,
    label_field: str = "label",
    regression: bool = False,
    labels: LabelSet | Sequence[str] | None = None,
) -> ClassifyDataset:
    """Read and check a labelled file.

    Args:
        path: a .jsonl/.json, .csv or .tsv file (else pass `format`).
        format: "jsonl", "csv" or "tsv"; overrides the suffix.
        text_field, label_field: the names of the text and label fields (columns).
        pair_field: the second text; None reads "text_pair" when the file has it (single
            texts otherwise), a name given must be in the file.
        regression: the label is a float target.
        labels: the label set: the training set's `LabelSet` when reading a dev file, a list
            (`--labels`) to fix the order, or None to collect it in first-seen order.

    Example:
        >>> train = read_classify("train.jsonl")  # doctest: +SKIP
        >>> dev = read_classify("dev.jsonl", labels=train.label_set)  # doctest: +SKIP
    """
    path = Path(path)
    kind = detect_format(path, format)
    if not path.is_file():
        raise UserError(f"labelled file not found: {path}")
    if isinstance(labels, LabelSet) or labels is None:
        fixed = labels
    else:
        fixed = LabelSet(tuple(str(name) for name in labels), "--labels")
    if regression and fixed is not None:
        raise UserError("a label set does not apply to a regression target", hint="drop --labels")
    fields = Fields(text_field, pair_field, label_field)
    parse = _jsonl_rows if kind == "jsonl" else _table_rows
    return read_records(path, lambda lines: parse(lines, str(path), kind, fields), fields,
                        regression=regression, labels=fixed)  # fmt: skip


def read_records(
    path: Path,
    parse: Callable[[Iterator[tuple[int, str]]], Iterator[tuple[int, dict]]],
    fields: Fields,
    *,
    regression: bool,
    labels: LabelSet | None,
) -> ClassifyDataset:
    """Stream `path` through `parse` ((line number, text) -> (line number, row dict)) and
    check and collect its rows by `fields`: the one collector behind `read_classify` and the
    GLUE reader (nvlm.tasks.classify.glue)."""
    collect = _Collector(str(path), fields, regression, labels)
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for line_no, row in parse(_lines(handle, digest, str(path))):
            collect.add(line_no, row)
    return collect.dataset(digest.hexdigest())


@dataclass(frozen=True)
class Fields:
    """The names of a row's text, second text (None: optional `text_pair`) and label."""

    text: str
    pair: str | None
    label: str


# --- lines and rows ------------------------------------------------------------------------


def _lines(handle, digest, source: str) -> Iterator[tuple[int, str]]:
    """(line number, text) of each line, hashed as read; a line that is not UTF-8 is one line."""
    for number, raw in enumerate(handle, start=1):
        digest.update(raw)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UserError(
                f"{source} line {number}: not UTF-8 text (byte 0x{raw[exc.start]:02x})",
                hint="save it as UTF-8",
            ) from None
        if number == 1:
            text = text.removeprefix("\ufeff")  # a byte-order mark some editors write
        yield number, text


def _jsonl_rows(lines, source: str, kind: str, fields: Fields) -> Iterator[tuple[int, dict]]:
    for number, text in lines:
        if not text.strip():
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            hint = "write one JSON object per line (JSONL)" if text.lstrip()[:1] == "[" else None
            raise UserError(
                f"{source} line {number}: not valid JSON ({exc.msg} at column {exc.colno})",
                hint=hint,
            ) from None
        if not isinstance(obj, dict):
            raise UserError(
                f"{source} line {number}: expected a JSON object, not {_json_type(obj)}",
                hint="write one JSON object per line (JSONL)",
            )
        yield number, obj


def _table_rows(lines, source: str, kind: str, fields: Fields) -> Iterator[tuple[int, dict]]:
    """Rows of a CSV/TSV file with a header, as {column: cell}, with their first line number."""
    if kind == "tsv":
        # GLUE's convention (and BERT's reader): no quoting, a tab always separates.
        split = _tsv_records(lines)
    else:
        split = _csv_records(lines, source)
    header: list[str] | None = None
    for number, cells in split:
        if not cells or cells == [""]:
            continue  # a blank line
        if header is None:
            header = cells
            _check_header(header, source, fields)
            continue
        if len(cells) != len(header):
            raise UserError(
                f"{source} line {number}: {len(cells)} columns where the header has {len(header)}",
                hint="a tab inside a text splits it in TSV; use JSONL or CSV for such texts"
                if kind == "tsv"
                else "quote a text that holds a comma",
            )
        yield number, dict(zip(header, cells, strict=True))
    if header is None:
        raise UserError(f"{source} is empty: expected a header line, then rows")


def _tsv_records(lines) -> Iterator[tuple[int, list[str]]]:
    for number, text in lines:
        yield number, text.rstrip("\r\n").split("\t")


def _csv_records(lines, source: str) -> Iterator[tuple[int, list[str]]]:
    numbers = [0]

    def texts() -> Iterator[str]:
        for number, text in lines:
            numbers[0] = number
            yield text

    reader = csv.reader(texts(), strict=True)
    while True:
        first = numbers[0] + 1  # a quoted field may span lines: report where the row began
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise UserError(f"{source} line {numbers[0]}: malformed CSV ({exc})") from None
        yield first, cells


def _check_header(header: list[str], source: str, fields: Fields) -> None:
    names = ", ".join(header)
    for name, option in ((fields.text, "--text-field"), (fields.label, "--label-field")):
        if name not in header:
            raise UserError(
                f"{source}: the header has no column {name!r} (columns: {names})",
                hint=f"name the column with {option}",
            )
    if fields.pair is not None and fields.pair not in header:
        raise UserError(f"{source}: the header has no column {fields.pair!r} (columns: {names})")
    if len(set(header)) != len(header):
        raise UserError(f"{source}: the header names a column twice ({names})")


# --- checking and collecting examples ------------------------------------------------------


class _Collector:
    """Checks each row and keeps its texts and label; the first row decides whether the file
    holds pairs (every row must then agree)."""

    def __init__(
        self, source: str, fields: Fields, regression: bool, fixed: LabelSet | None
    ) -> None:
        self.source = source
        self.fields = fields
        self.regression = regression
        self.fixed = fixed
        self.texts: list[str] = []
        self.pairs: list[str] = []
        self.values: list[Any] = []
        self.names = {} if fixed is None else {name: i for i, name in enumerate(fixed.names)}
        # A named pair field is required; the default one is read when the first row has it.
        self.has_pairs: bool | None = True if fields.pair is not None else None

    def add(self, number: int, row: dict) -> None:
        fields = self.fields
        where = f"{self.source} line {number}"
        text = self._text(where, row.get(fields.text), fields.text)
        pair_name = fields.pair or "text_pair"
        pair = row.get(pair_name)
        if self.has_pairs is None:
            self.has_pairs = pair is not None
        if self.has_pairs:
            if pair is None:
                raise UserError(f"{where}: no {pair_name!r}, which the other rows have")
            self.pairs.append(self._text(where, pair, pair_name))
        elif pair is not None:
            raise UserError(f"{where}: has a {pair_name!r}, which the first row lacks")
        self.texts.append(text)
        self.values.append(self._label(where, row.get(fields.label), fields.label))

    def _text(self, where: str, value: Any, name: str) -> str:
        if value is None:
            raise UserError(f"{where}: no {name!r}")
        if not isinstance(value, str):
            raise UserError(f"{where}: {name!r} must be a string, not {_json_type(value)}")
        if not value.strip():
            raise UserError(f"{where}: {name!r} is empty")
        return value

    def _label(self, where: str, value: Any, name: str) -> Any:
        if value is None or value == "":
            raise UserError(f"{where}: no label ({name!r} is missing or empty)")
        if self.regression:
            return _target(where, value)
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise UserError(
                f"{where}: the label must be a string or an integer, not {_json_type(value)}",
                hint="pass --regression for a numeric target",
            )
        label = str(value)
        index = self.names.get(label)
        if index is None:
            if self.fixed is not None:
                raise UserError(
                    f"{where}: the label {label!r} is not in the label set of "
                    f"{self.fixed.source or 'the training data'} ({', '.join(self.fixed.names)})"
                )
            index = self.names[label] = len(self.names)
        return index

    def dataset(self, sha256: str) -> ClassifyDataset:
        if not self.texts:
            raise UserError(f"{self.source} holds no examples")
        if self.regression:
            return ClassifyDataset(
                self.texts, self.pairs if self.has_pairs else None, None,
                np.asarray(self.values, dtype=np.float32), None, self.source, sha256,
            )  # fmt: skip
        if self.fixed is not None:
            label_set = self.fixed
        else:
            names = tuple(self.names)
            if len(names) < 2:
                raise UserError(
                    f"{self.source} has one label only ({names[0]!r}): a classifier needs at "
                    "least two",
                    hint="check the label field, or pass --regression for a numeric target",
                )
            label_set = LabelSet(names, self.source)
        return ClassifyDataset(
            self.texts, self.pairs if self.has_pairs else None,
            np.asarray(self.values, dtype=np.int32), None, label_set, self.source, sha256,
        )  # fmt: skip


def _target(where: str, value: Any) -> float:
    if isinstance(value, bool):
        number = math.nan
    elif isinstance(value, int | float):
        number = float(value)
    else:
        try:
            number = float(str(value).strip())
        except ValueError:
            number = math.nan
    if not math.isfinite(number):
        raise UserError(f"{where}: the regression target {value!r} is not a finite number")
    return number


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return f"a number ({value!r})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
