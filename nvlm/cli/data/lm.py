"""`nvlm data lm`: a word-level corpus for Transformer-XL (library: nvlm.data.lm)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nvlm.cli.data.options import overwrite_option
from nvlm.cli.data.summary import finish
from nvlm.cli.options import JsonFlag
from nvlm.data.stop_signal import sigterm_stops
from nvlm.report import console


def lm(
    train: Annotated[
        Path,
        typer.Option("--train", help="Training text: one line per line, words split by spaces."),
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Output directory (vocab, id streams, manifest).")
    ],
    valid: Annotated[Path | None, typer.Option("--valid", help="Validation text.")] = None,
    test: Annotated[Path | None, typer.Option("--test", help="Test text.")] = None,
    vocab: Annotated[
        Path | None,
        typer.Option(
            "--vocab", help="Use this vocab.txt (e.g. a checkpoint's) instead of counting --train."
        ),
    ] = None,
    min_freq: Annotated[
        int, typer.Option("--min-freq", help="Words seen fewer times in --train become <unk>.")
    ] = 1,
    max_size: Annotated[
        int | None,
        typer.Option(
            "--max-size", help="Keep at most N tokens (the most frequent); the rest is <unk>."
        ),
    ] = None,
    overwrite: overwrite_option("files in --out that nvlm data lm did not make") = False,
    json_: JsonFlag = False,
) -> None:
    r"""Tokenize a word-level corpus (WikiText style) for Transformer-XL: a frequency-ordered vocabulary, one int32 token stream per split (HDF5) and a manifest.

    Every line ends with <eos>; words keep their case; <unk> stays a token. The streams do not depend on batch size, sequence length or GPU count.

    Example:

        nvlm data lm --train wikitext-103/wiki.train.tokens \
          --valid wikitext-103/wiki.valid.tokens \
          --test wikitext-103/wiki.test.tokens --out data/wt103
    """
    from nvlm.data.lm.corpus import build_lm_corpus

    inputs = {"train": train, "valid": valid, "test": test}
    with sigterm_stops("data lm"):
        summary = build_lm_corpus(
            {k: v for k, v in inputs.items() if v is not None},
            out,
            vocab=vocab,
            min_freq=min_freq,
            max_size=max_size,
            overwrite=overwrite,
            on_split=None if json_ else (lambda what: console().print(f"[dim]{what}...[/dim]")),
        )
    keys = "out vocab_size vocab_source " + " ".join(
        f"{s}_tokens {s}_unk" for s in ("train", "valid", "test") if f"{s}_tokens" in summary
    )
    finish("nvlm data lm", summary, json_, keys + " seconds")
