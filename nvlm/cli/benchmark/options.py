"""Options `nvlm benchmark train` and `infer` share (their help is the benchmark's own)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

BenchPresetOption = Annotated[
    str | None,
    typer.Option(
        "--preset",
        help="Hardware preset (nvlm presets list) or a YAML path: batch per process, "
        "accumulation, precision and XLA default to its recipe.",
    ),
]
BenchSizeOption = Annotated[
    str | None, typer.Option("--size", help="Model size: tiny | small | base | large.")
]
PrecisionsOption = Annotated[
    str | None,
    typer.Option(
        "--precision",
        help="Comma-separated precisions, each a column or table: fp32, tf32, amp, bf16 "
        "(default: the preset's, else fp32).",
    ),
]
BatchSizesOption = Annotated[
    str | None,
    typer.Option("--batch-sizes", help="Comma-separated batch sizes per process, e.g. 8,16."),
]
SeqLenOption = Annotated[
    int | None,
    typer.Option("--seq-len", min=1, help="Sequence length (Transformer-XL: tgt_len)."),
]
BenchXlaOption = Annotated[
    bool | None, typer.Option("--xla/--no-xla", help="XLA-compile the step (default: preset).")
]
BenchInitOption = Annotated[
    str | None,
    typer.Option(
        "--init", help="Weights to time (an nvlm run, a Hugging Face directory...): default random."
    ),
]
MarkdownFlag = Annotated[
    bool, typer.Option("--markdown", help="Print the tables as Markdown on stdout.")
]
RecordsOutOption = Annotated[
    Path | None,
    typer.Option(
        "--out",
        "-o",
        help="Append one JSON record per point to this file (JSONL), as each is measured.",
    ),
]
CompareFlag = Annotated[
    bool,
    typer.Option(
        "--compare",
        help="Print NVIDIA's published figure beside each point that matches a published "
        "configuration (the preset's system, precision, batch, GPUs), with the ratio.",
    ),
]
MaxBusyOption = Annotated[
    float,
    typer.Option(
        "--max-busy",
        min=0.0,
        max=1.0,
        help="Stop when other processes keep more than this share of the CPUs busy for "
        "--max-wait seconds (their load would be measured, not nvlm's); 1 measures anyway.",
    ),
]
MaxWaitOption = Annotated[
    float, typer.Option("--max-wait", min=0.0, help="Seconds to wait for a busy machine.")
]
