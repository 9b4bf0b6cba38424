"""`nvlm data vocab`: train a WordPiece vocab (library: nvlm.data.vocab_trainer)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nvlm.cli.data.options import (
    ErrorsOption,
    InputOption,
    LowercaseFlag,
    given_inputs,
    overwrite_option,
)
from nvlm.cli.data.summary import finish
from nvlm.cli.options import JsonFlag
from nvlm.data.stop_signal import sigterm_stops
from nvlm.report import console


def vocab(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", "-o", help="The vocab.txt to write.")],
    inputs: InputOption = None,
    vocab_size: Annotated[
        int,
        typer.Option("--vocab-size", help="Tokens in the vocab, specials included (BERT: 30522)."),
    ] = 30522,
    lowercase: LowercaseFlag = True,
    min_freq: Annotated[
        int, typer.Option("--min-freq", help="Ignore merges seen fewer times.")
    ] = 2,
    min_frequency: Annotated[
        int | None, typer.Option("--min-frequency", hidden=True, help="Old name of --min-freq.")
    ] = None,
    errors: ErrorsOption = "strict",
    overwrite: overwrite_option("--out if it exists") = False,
    json_: JsonFlag = False,
) -> None:
    """Train a BERT-style WordPiece vocab (one token per line; [PAD] [UNK] [CLS] [SEP] [MASK] = ids 0-4).

    Example:

        nvlm data vocab --input corpus/*.txt --vocab-size 30522 --out vocab.txt
    """
    from nvlm.data.inputs import expand_inputs
    from nvlm.data.vocab_trainer import train_vocab

    if min_frequency is not None:  # the option's name before `data lm`'s --min-freq set it
        from nvlm.report import warn

        warn("--min-frequency is now --min-freq (the old name works until the next release)")
        min_freq = min_frequency
    # A directory input may hold --out: the vocab is not text to learn from.
    paths = expand_inputs(given_inputs(ctx, inputs), exclude=out)
    with sigterm_stops("data vocab"):
        summary = train_vocab(
            paths, vocab_size, out, cased=not lowercase, min_frequency=min_freq, errors=errors,
            overwrite=overwrite,
        )  # fmt: skip
    finish(
        "nvlm data vocab",
        summary,
        json_,
        "out vocab_size vocab_size_requested lowercase lines seconds",
    )
    if summary["vocab_size"] < summary["vocab_size_requested"] and not json_:
        console().print(
            f"[yellow]note:[/yellow] the text only supports {summary['vocab_size']:,} tokens "
            f"(asked for {summary['vocab_size_requested']:,})"
        )
