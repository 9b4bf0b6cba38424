"""The nine GLUE tasks in their official TSV layouts (`read_glue`).

The files are those of the GLUE benchmark as distributed (per-task zips from
dl.fbaipublicfiles.com/glue/data/, laid out by nyu-mll's download_glue_data.py as
`glue_data/<Folder>/<split>.tsv`; MRPC's train.tsv/dev.tsv are built by that script from
Microsoft's msr_paraphrase_train.txt and GLUE's dev ids, with the same header).

Where each fact comes from (read, not copied):
- columns, header or not, label column, file names: the GLUE processors of google-research/bert
  `run_classifier.py` and huggingface/transformers `src/transformers/data/processors/glue.py`
  (CoLA: no header, label at column 1, sentence at column 3; SST-2 `sentence`/`label`; MRPC
  `Quality`, `#1 String`, `#2 String`; STS-B `sentence1`, `sentence2` at columns 7-8 and the
  score last; QQP `question1`, `question2`, `is_duplicate` at 3-5; MNLI `sentence1`,
  `sentence2` at 8-9 and `gold_label` last, dev_matched.tsv / dev_mismatched.tsv; QNLI
  `question`, `sentence`, `label`; RTE and WNLI `sentence1`, `sentence2`, `label`);
- label sets and their order: the same processors' `get_labels()` (MNLI contradiction,
  entailment, neutral; QNLI and RTE entailment, not_entailment; the others "0", "1"; STS-B
  none: regression);
- folder names inside the zips: huggingface/datasets `datasets/glue/glue.py` (`data_dir`);
- metrics: the GLUE paper (Wang et al. 2019, table 1): CoLA Matthews correlation; MRPC and QQP
  accuracy and F1; STS-B Pearson and Spearman correlation; the others accuracy.

Quoting: GLUE's TSVs are NOT CSV-quoted (BERT's reader uses `csv.reader(..., quotechar=None)`,
i.e. `csv.QUOTE_NONE`): sentences hold unbalanced `"` characters, so a row is split on tabs and
nothing else. A row whose number of columns differs from the header's is refused with its line.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from nvlm.errors import UserError
from nvlm.tasks.classify.reader import ClassifyDataset, Fields, LabelSet, read_records

# The keys a GLUE row is mapped to before the shared checks of reader.read_records.
_FIELDS = {False: Fields("text", None, "label"), True: Fields("text", "text_pair", "label")}


@dataclass(frozen=True)
class GlueTask:
    """One GLUE task's files and conventions.

    Args:
        name: the task's name on the command line (`--glue cola`).
        folder: its directory in the official zip and in download_glue_data.py's output.
        labels: the label strings in the reference order (ids), None for regression.
        metrics: the official metric names (the metrics module computes them).
        splits: split name -> file name in `folder`.
        header: the header line's columns, or None when the files have none (CoLA).
        text, pair, label: the column (a header name, or an index without a header).

    Example:
        >>> GLUE_TASKS["mnli"].splits["dev_mismatched"]
        'dev_mismatched.tsv'
    """

    name: str
    folder: str
    labels: tuple[str, ...] | None
    metrics: tuple[str, ...]
    splits: dict[str, str]
    header: bool
    text: str | int
    pair: str | int | None
    label: str | int
    columns: int | None = None  # the column count of a file without a header

    @property
    def regression(self) -> bool:
        return self.labels is None

    def label_set(self) -> LabelSet | None:
        return None if self.labels is None else LabelSet(self.labels, f"GLUE {self.name}")


_BINARY = ("0", "1")
_TRAIN_DEV = {"train": "train.tsv", "dev": "dev.tsv"}

GLUE_TASKS: dict[str, GlueTask] = {
    task.name: task
    for task in (
        # source \t label \t original-label mark \t sentence; no header in train/dev.
        GlueTask("cola", "CoLA", _BINARY, ("mcc",), _TRAIN_DEV, False, 3, None, 1, columns=4),
        GlueTask("sst2", "SST-2", _BINARY, ("accuracy",), _TRAIN_DEV, True, "sentence", None,
                 "label"),
        GlueTask("mrpc", "MRPC", _BINARY, ("accuracy", "f1"), _TRAIN_DEV, True, "#1 String",
                 "#2 String", "Quality"),
        GlueTask("stsb", "STS-B", None, ("pearson", "spearman"), _TRAIN_DEV, True, "sentence1",
                 "sentence2", "score"),
        GlueTask("qqp", "QQP", _BINARY, ("accuracy", "f1"), _TRAIN_DEV, True, "question1",
                 "question2", "is_duplicate"),
        # "dev" is the matched set, as the references' MNLI processor reads it.
        GlueTask("mnli", "MNLI", ("contradiction", "entailment", "neutral"), ("accuracy",),
                 {"train": "train.tsv", "dev": "dev_matched.tsv",
                  "dev_matched": "dev_matched.tsv", "dev_mismatched": "dev_mismatched.tsv"},
                 True, "sentence1", "sentence2", "gold_label"),
        GlueTask("qnli", "QNLI", ("entailment", "not_entailment"), ("accuracy",), _TRAIN_DEV,
                 True, "question", "sentence", "label"),
        GlueTask("rte", "RTE", ("entailment", "not_entailment"), ("accuracy",), _TRAIN_DEV, True,
                 "sentence1", "sentence2", "label"),
        GlueTask("wnli", "WNLI", _BINARY, ("accuracy",), _TRAIN_DEV, True, "sentence1",
                 "sentence2", "label"),
    )
}  # fmt: skip


def glue_task(name: str) -> GlueTask:
    """The task called `name`, or one line listing the nine."""
    task = GLUE_TASKS.get(name.lower())
    if task is None:
        raise UserError(f"unknown GLUE task {name!r}", hint=f"use one of {'|'.join(GLUE_TASKS)}")
    return task


def glue_file(task: GlueTask, directory: str | os.PathLike[str], split: str) -> Path:
    """Where `split` of `task` is: `directory` itself when it is a file, else in `directory`
    or its `<Folder>` (CoLA, SST-2, ...) or `<name>` (cola, sst2, ...) subdirectory."""
    if split not in task.splits:
        raise UserError(
            f"GLUE {task.name} has no split {split!r}", hint=f"use one of {', '.join(task.splits)}"
        )
    base = Path(directory)
    if base.is_file():
        return base
    name = task.splits[split]
    for candidate in (base / name, base / task.folder / name, base / task.name / name):
        if candidate.is_file():
            return candidate
    raise UserError(
        f"GLUE {task.name} {split}: no {name} in {base} or {base / task.folder}",
        hint=f"see `nvlm data download glue --task {task.name} --out {base}`",
    )


def read_glue(
    task: str, directory: str | os.PathLike[str], split: str = "train"
) -> ClassifyDataset:
    """Read one split of a GLUE task in its official layout.

    Args:
        task: cola, sst2, mrpc, stsb, qqp, mnli, qnli, rte or wnli.
        directory: the task's directory, its parent (download_glue_data.py's `glue_data`,
            `nvlm data download glue`'s --out), or the .tsv file itself.
        split: "train" or "dev" ("dev_matched"/"dev_mismatched" for MNLI; "dev" = matched).

    Example:
        >>> dev = read_glue("mnli", "glue_data", "dev_mismatched")  # doctest: +SKIP
    """
    spec = glue_task(task)
    path = glue_file(spec, directory, split)
    fields = _FIELDS[spec.pair is not None]
    return read_records(
        path,
        lambda lines: _rows(spec, lines, str(path)),
        fields,
        regression=spec.regression,
        labels=spec.label_set(),
    )


def _rows(task: GlueTask, lines, source: str) -> Iterator[tuple[int, dict]]:
    """{"text", "text_pair"?, "label"} of each row, by the task's columns."""
    indices: tuple[int, int | None, int] | None = None
    width = task.columns
    if not task.header:
        indices = (int(task.text), None if task.pair is None else int(task.pair), int(task.label))
    for number, text in lines:
        line = text.rstrip("\r\n")
        if not line.strip():
            continue
        cells = line.split("\t")  # csv.QUOTE_NONE: a tab always separates, quotes are text
        if indices is None:
            indices = _header_indices(task, cells, source)
            width = len(cells)
            continue
        if len(cells) != width:
            raise UserError(
                f"{source} line {number}: {len(cells)} columns where GLUE {task.name} has {width}",
                hint=f"is it the {task.folder} file of the official GLUE download?",
            )
        text_at, pair_at, label_at = indices
        row = {"text": cells[text_at], "label": cells[label_at]}
        if pair_at is not None:
            row["text_pair"] = cells[pair_at]
        yield number, row
    if indices is None:
        raise UserError(f"{source} is empty: expected GLUE {task.name}'s header line")


def _header_indices(task: GlueTask, header: list[str], source: str) -> tuple[int, int | None, int]:
    wanted = [task.text, task.pair, task.label]
    missing = [str(name) for name in wanted if name is not None and name not in header]
    if missing:
        raise UserError(
            f"{source}: the header lacks {', '.join(repr(m) for m in missing)} "
            f"(it has {', '.join(header)})",
            hint=f"is it the {task.folder} file of the official GLUE download?",
        )
    pair = None if task.pair is None else header.index(str(task.pair))
    return header.index(str(task.text)), pair, header.index(str(task.label))
