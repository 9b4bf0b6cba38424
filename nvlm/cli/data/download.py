"""`nvlm data download`: an official data set, checksum-verified (library: nvlm.data.download)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from nvlm.cli.data.options import overwrite_option
from nvlm.cli.options import JsonFlag
from nvlm.data.stop_signal import sigterm_stops
from nvlm.report import console, emit_json, print_table, summary_table


class Dataset(StrEnum):
    squad = "squad"
    wikitext_2 = "wikitext-2"
    wikitext_103 = "wikitext-103"
    wikipedia = "wikipedia"
    glue = "glue"


def download(
    dataset: Annotated[
        Dataset, typer.Argument(help="squad, wikitext-2, wikitext-103, wikipedia or glue.")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory to download into.")],
    version: Annotated[
        str | None, typer.Option("--version", help="SQuAD version: 1.1 (default) or 2.0.")
    ] = None,
    lang: Annotated[str, typer.Option("--lang", help="Wikipedia language code.")] = "en",
    task: Annotated[
        str | None,
        typer.Option("--task", help="GLUE task: cola|sst2|mrpc|stsb|qqp|mnli|qnli|rte|wnli."),
    ] = None,
    from_path: Annotated[
        Path | None,
        typer.Option(
            "--from",
            help="Take the files from this local file or directory instead of the network (verified the same way).",
        ),
    ] = None,
    overwrite: overwrite_option("files in --out that are not the published ones") = False,
    json_: JsonFlag = False,
) -> None:
    """Download an official data set, verify its published checksum, unpack it.

    Interrupted downloads resume (HTTP Range) when the command is run again.

    Example:

        nvlm data download squad --version 2.0 --out data

        nvlm data download glue --task mnli --out glue_data
    """
    from rich.progress import DownloadColumn, Progress, TransferSpeedColumn

    from nvlm.data.download.fetch import download_dataset

    # transient: the bars go when done (the table says what came), so an error stays one line.
    with Progress(
        *Progress.get_default_columns(), DownloadColumn(), TransferSpeedColumn(),
        console=console(), transient=True,
    ) as bar:  # fmt: skip
        tasks: dict[str, int] = {}

        def on_bytes(name: str, done: int, total: int | None) -> None:
            if name not in tasks:
                tasks[name] = bar.add_task(name, total=total)
            bar.update(tasks[name], completed=done, total=total)

        with sigterm_stops(f"data download {dataset.value}"):
            summary = download_dataset(
                dataset.value, out, version=version, lang=lang, from_path=from_path,
                overwrite=overwrite, on_bytes=on_bytes, task=task,
            )  # fmt: skip
    rows = [
        (Path(f["path"]).name, f"{f['checksum'].split(':')[0]} ok, {f['bytes']:,} bytes")
        for f in summary["files"]
    ]
    rows += [("unpacked", p) for p in summary["unpacked"]]
    if json_:
        emit_json(summary)
    else:
        print_table(summary_table(f"nvlm data download {dataset.value}", rows))
