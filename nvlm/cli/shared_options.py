"""Options that two or more commands of `nvlm data` or `nvlm benchmark` share (Annotated
aliases, defined once; nvlm/cli/options.py holds those of the other command groups)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nvlm.errors import UserError

# -- nvlm data ------------------------------------------------------------------------------------
# Click options take a fixed number of values; extra arguments after --input are collected
# from the context (see `given_inputs`) so that `--input data/*.txt` (expanded by the shell) works.
MANY_INPUTS = {"allow_extra_args": True}

InputOption = Annotated[
    list[str] | None,
    typer.Option(
        "--input",
        "-i",
        help="Input files, directories or globs (repeatable; several may follow one --input).",
    ),
]
ErrorsOption = Annotated[
    str,
    typer.Option(
        "--errors",
        help="On bytes that are not UTF-8: strict (stop, naming file and byte offset) or replace.",
    ),
]
LowercaseFlag = Annotated[
    bool,
    typer.Option("--lowercase/--cased", help="Lowercase and strip accents (uncased vocab) or not."),
]
WorkersOption = Annotated[
    int, typer.Option("--workers", "-w", help="Worker processes; 0 = one per CPU core.")
]
SplitterLangOption = Annotated[
    str, typer.Option("--lang", help="Language of the sentence splitter.")
]


def overwrite_option(what: str) -> object:
    """`--overwrite`, whose help names what it replaces (`Replace {what}.`)."""
    return Annotated[bool, typer.Option("--overwrite", help=f"Replace {what}.")]


def given_inputs(ctx: typer.Context, given: list[str] | None) -> list[str]:
    """--input's values plus the shell-expanded arguments after it (commands declared with
    `context_settings=MANY_INPUTS`); an unknown option among them is refused."""
    extra = [a for a in ctx.args if not a.startswith("-")]
    unknown = [a for a in ctx.args if a.startswith("-")]
    if unknown:
        raise UserError(f"unknown option {unknown[0]}", hint="see --help")
    return [*(given or []), *extra]


# -- nvlm benchmark train and infer ---------------------------------------------------------------
PresetOption = Annotated[
    str | None,
    typer.Option(
        "--preset",
        help="Hardware preset (nvlm presets list) or a YAML path: batch per process, "
        "accumulation, precision and XLA default to its recipe.",
    ),
]
SizeOption = Annotated[
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
XlaOption = Annotated[
    bool | None, typer.Option("--xla/--no-xla", help="XLA-compile the step (default: preset).")
]
InitOption = Annotated[
    str | None,
    typer.Option(
        "--init", help="Weights to time (an nvlm run, a Hugging Face directory...): default random."
    ),
]
MarkdownFlag = Annotated[
    bool, typer.Option("--markdown", help="Print the tables as Markdown on stdout.")
]
OutFileOption = Annotated[
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
