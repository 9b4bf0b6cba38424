"""`nvlm data wikipedia`: article text from a dump (library: nvlm.data.wikipedia)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from nvlm.cli.data.options import SplitterLangOption, WorkersOption, overwrite_option
from nvlm.cli.data.summary import finish
from nvlm.cli.options import JsonFlag
from nvlm.data.stop_signal import sigterm_stops
from nvlm.report import console


def wikipedia(
    dump: Annotated[Path, typer.Argument(help="A pages-articles .xml.bz2 dump.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for the text files.")],
    workers: WorkersOption = 0,
    shards: Annotated[
        int, typer.Option("--shards", help="Text files to write (article k goes to file k mod N).")
    ] = 4,
    lang: SplitterLangOption = "en",
    overwrite: overwrite_option("text files already in --out") = False,
    json_: JsonFlag = False,
) -> None:
    r"""Extract article text from a Wikipedia dump: one sentence per line, blank line between articles.

    The output is ready for `nvlm data pretraining`.

    Example:

        nvlm data wikipedia data/wikipedia/enwiki-latest-pages-articles.xml.bz2 \
          --out data/wiki-text --workers 8 --shards 64
    """
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from nvlm.data.wikipedia.extract import extract_wikipedia

    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
        console=console(), transient=True,
    ) as bar:  # fmt: skip
        task = bar.add_task("reading pages")

        def on_pages(pages: int, documents: int) -> None:
            bar.update(task, description=f"{pages:,} pages read, {documents:,} articles written")

        with sigterm_stops("data wikipedia"):
            summary = extract_wikipedia(
                dump, out, workers=workers or os.cpu_count() or 1, shards=shards, lang=lang,
                overwrite=overwrite, on_pages=on_pages,
            )  # fmt: skip
    finish(
        "nvlm data wikipedia",
        summary,
        json_,
        "out pages articles documents sentences redirects skipped_namespace empty files seconds",
    )
