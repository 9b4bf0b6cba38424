"""Options the `nvlm data` commands share."""

from __future__ import annotations

from typing import Annotated

import typer

from nvlm.errors import UserError

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
