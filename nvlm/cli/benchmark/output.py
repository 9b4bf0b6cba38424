"""How `nvlm benchmark train` and `infer` print: one stdout format (tables, Markdown or JSON),
checked before anything runs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from nvlm.errors import UserError
from nvlm.report import emit_json, print_result_table


def check_outputs(markdown: bool, json_out: bool, out: Path | None, inputs: dict) -> None:
    """Before anything runs: one stdout format, and an --out that is a records file of ours."""
    from nvlm.bench import records

    if markdown and json_out:
        raise UserError("--markdown and --json both print on stdout: choose one")
    records.check_out(out, {k: Path(v) if v else None for k, v in inputs.items()})


def report(outcome, grids_of: Callable, *, markdown: bool, json_out: bool, compare: bool) -> None:
    """The sweep's records as JSON, Markdown or tables; then the reason a sweep stopped early
    (Interrupted, RunFailed) is raised, after the points measured before it are shown."""
    if json_out:
        emit_json(outcome.records)
    elif outcome.records:
        grids = grids_of(outcome.records)
        if compare:
            from nvlm.bench.compare import compare_grid

            grids.append(compare_grid(outcome.records))
        if markdown:
            import sys

            sys.stdout.write("\n".join(g.markdown() for g in grids))
            sys.stdout.flush()
        else:
            for grid in grids:
                print_result_table(grid.rich())
    if outcome.stopped is not None:
        raise outcome.stopped
