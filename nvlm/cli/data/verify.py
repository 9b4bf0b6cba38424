"""`nvlm data verify`: re-check a data directory against its manifest (library: nvlm.data.verify)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nvlm.cli.options import JsonFlag
from nvlm.report import console, emit_json, print_result_table, summary_table


def verify(
    directory: Annotated[Path, typer.Argument(help="A directory made by an `nvlm data` command.")],
    json_: JsonFlag = False,
) -> None:
    """Re-check every shard against manifest.json: sha256, datasets, shapes, dtypes, value ranges, counts.

    The result (a `bad NAME: problems` line per bad file, then the table) goes to stdout, so `nvlm data verify DIR | grep bad` works; exits 2 and names the bad files if any is bad.

    Example:

        nvlm data verify data/bert-128
    """
    from nvlm.data.verify import refuse_bad, verify_directory

    report = verify_directory(directory)
    if json_:
        emit_json(report)
    else:
        for bad in report["bad"]:
            # Plain text: one line per file whatever the terminal width (grep, awk).
            typer.echo(f"bad {bad['name']}: " + "; ".join(bad["problems"]))
        for name in report.get("unlisted_files", []):
            console().print(f"[yellow]warning:[/yellow] {name} is not listed in the manifest")
        print_result_table(
            summary_table(
                f"nvlm data verify ({report['kind']})",
                [
                    ("directory", report["directory"]),
                    ("files checked", report["files"]),
                    ("bad files", len(report["bad"])),
                    ("tokens", report["tokens"])
                    if "tokens" in report
                    else ("instances", report.get("instances", 0)),
                ],
            )
        )
    refuse_bad(report, directory)
