"""Console output: rich on stderr for people, JSON on stdout for programs.

Only rank 0 talks to the console; `console()` returns a quiet console on other ranks.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

_CONSOLE: Console | None = None


def is_rank0() -> bool:
    for var in ("OMPI_COMM_WORLD_RANK", "HOROVOD_RANK", "PMI_RANK", "SLURM_PROCID"):
        if var in os.environ and os.environ.get("NVLM_CHILD"):
            return os.environ[var] == "0"
    return True


def console() -> Console:
    """The stderr console (progress, logs, human summaries). Quiet on ranks other than 0."""
    global _CONSOLE
    if _CONSOLE is None:
        _CONSOLE = Console(stderr=True, quiet=not is_rank0(), highlight=False)
        # A batch log (Slurm .out, `2> log`) gets whole lines, not text wrapped at 80 columns.
        _CONSOLE.soft_wrap = not _CONSOLE.is_terminal
    return _CONSOLE


_LOG: Console | None = None  # RUN/logs/run.log of a single-process run (plain text)


@contextmanager
def log_to(path: Path) -> Iterator[None]:
    """Also write what this process says (notes, warnings, progress lines, summaries) to
    `path` as plain text while the block runs: a single-process run keeps RUN/logs/run.log as
    each rank of a launched job keeps RUN/logs/rank-N.log."""
    global _LOG
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        previous, _LOG = _LOG, Console(file=fh, no_color=True, width=100, highlight=False)
        try:
            yield
        finally:
            _LOG = previous


def _to_log(renderable: Any) -> None:
    if _LOG is not None:
        _LOG.print(renderable)
        _LOG.file.flush()


def info(message: str) -> None:
    console().print(message)
    _to_log(message)


def warn(message: str) -> None:
    console().print(f"[yellow]warning:[/yellow] {message}")
    _to_log(f"warning: {message}")


def plain_line(text: str, *, to_console: bool = True) -> None:
    """One line of a batch log, flushed at once: on stderr (unless a live display draws it)
    and in the run's log file."""
    if to_console and not console().quiet:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()
    if _LOG is not None:
        _LOG.file.write(text + "\n")
        _LOG.file.flush()


def emit_json(obj: Any) -> None:
    """Machine-readable result on stdout (only with --json)."""
    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")
    sys.stdout.flush()


def emit_jsonl(obj: Any) -> None:
    """One JSON object per line on stdout, flushed at once (streaming pipelines)."""
    sys.stdout.write(json.dumps(obj, default=_json_default) + "\n")
    sys.stdout.flush()


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):  # numpy scalars
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)


def summary_table(title: str, rows: Iterable[tuple[str, Any]] | Mapping[str, Any]) -> Table:
    """A two-column table: figure name (with its unit) and value."""
    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column("figure")
    table.add_column("value", justify="right")
    items = rows.items() if isinstance(rows, Mapping) else rows
    for name, value in items:
        table.add_row(str(name), format_value(value))
    return table


def format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value != 0 and (abs(value) >= 1e6 or abs(value) < 1e-3):
            return f"{value:.4g}"
        return f"{value:,.4f}".rstrip("0").rstrip(".") if abs(value) < 1000 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def print_table(table: Table) -> None:
    """A human summary on stderr (and in the run's log)."""
    _print_whole(console(), table)
    if _LOG is not None:
        _print_whole(_LOG, table)
        _LOG.file.flush()


def print_result_table(table: Table) -> None:
    """A listing or a result (presets list, doctor, data verify): stdout, for pipes."""
    _print_whole(Console(highlight=False), table)


def _print_whole(out: Console, table: Table) -> None:
    """In a terminal, the table fits the window; in a pipe or a file (grep, a Slurm .out, a
    run's log) each row stays on one line, cells neither wrapped nor cut at 80 columns."""
    if out.is_terminal:
        out.print(table)
        return
    wide = out.options.update(max_width=10_000)
    saved = out.width
    out.width = max(saved, Measurement.get(out, wide, table).maximum)
    try:
        out.print(table)
    finally:
        out.width = saved
