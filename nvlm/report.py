"""Console output: rich on stderr for people, JSON on stdout for programs.

Only rank 0 talks to the console; `console()` returns a quiet console on other ranks.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Mapping
from typing import Any

from rich.console import Console
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
    return _CONSOLE


def info(message: str) -> None:
    console().print(message)


def warn(message: str) -> None:
    console().print(f"[yellow]warning:[/yellow] {message}")


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
    console().print(table)
