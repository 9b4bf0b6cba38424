"""Options of `--task classify` (nvlm finetune, nvlm eval), defined once (Annotated aliases)."""

from __future__ import annotations

from typing import Annotated

import typer

GlueOption = Annotated[
    str | None,
    typer.Option(
        "--glue",
        help="classify: a GLUE task (cola|sst2|mrpc|stsb|qqp|mnli|qnli|rte|wnli): --data and "
        "--eval-data are its directory or .tsv files, its labels and official metrics apply.",
    ),
]
LabelsOption = Annotated[
    str | None,
    typer.Option(
        "--labels",
        help="classify: the label set and its order, e.g. negative,positive (default: the "
        "training file's labels in first-seen order).",
    ),
]
RegressionFlag = Annotated[
    bool,
    typer.Option(
        "--regression", help="classify: the label is a float target (mean squared error)."
    ),
]
TextFieldOption = Annotated[
    str | None,
    typer.Option("--text-field", help="classify: the text field or column (default text)."),
]
PairFieldOption = Annotated[
    str | None,
    typer.Option(
        "--pair-field",
        help="classify: the second text's field (default text_pair when the file has it).",
    ),
]
LabelFieldOption = Annotated[
    str | None,
    typer.Option("--label-field", help="classify: the label field or column (default label)."),
]
EvalEachEpochFlag = Annotated[
    bool,
    typer.Option(
        "--eval-each-epoch",
        help="classify, squad: also evaluate --eval-data after each epoch (eval_* figures in "
        "metrics.jsonl and TensorBoard); --set train.eval_every=N: every N steps.",
    ),
]
