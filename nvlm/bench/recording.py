"""What happens to each benchmark record as it is measured: NVIDIA's published figures beside
it (--compare), and one JSONL line appended to --out (so a stopped sweep keeps its points)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path


def recorder(out: Path | None, compare: bool) -> Callable[[dict], None]:
    """The `on_record` callback of a sweep."""
    from nvlm.bench import records

    def on_record(record: dict) -> None:
        if compare:
            from nvlm.bench.compare import comparisons

            record["published"] = [
                {"metric": m, "figure": f, "ratio": r} for m, f, r in comparisons(record)
            ]
        if out is not None:
            records.append(out, [record])

    return on_record
