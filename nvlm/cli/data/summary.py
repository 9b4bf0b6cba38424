"""How every `nvlm data` command reports: JSON on stdout with --json, else a table on stderr."""

from __future__ import annotations

from nvlm.report import emit_json, print_table, summary_table

# Table labels where the summary key alone would not say the unit.
_LABELS = {"out": "output", "seconds": "wall time (s)", "tokens_per_second": "tokens/s"}


def finish(title: str, summary: dict, json_: bool, keys: str) -> None:
    """JSON on stdout, or a table on stderr of the summary's `keys` (space separated)."""
    if json_:
        emit_json(summary)
    else:
        rows = [(_LABELS.get(k, k.replace("_", " ")), summary[k]) for k in keys.split()]
        print_table(summary_table(title, rows))
