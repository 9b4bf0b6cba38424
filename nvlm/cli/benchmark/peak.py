"""`nvlm benchmark peak`: the machine's dense matmul peak per precision (library: nvlm.bench.peaks)."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.table import Table

from nvlm.cli.options import JsonFlag
from nvlm.report import emit_json, print_result_table


def peak(
    precision: Annotated[
        str,
        typer.Option(
            "--precision",
            help="Comma-separated: fp32, tf32, bf16, amp (float16 matmuls, as amp runs them).",
        ),
    ] = "fp32,bf16,amp",
    refresh: Annotated[
        bool, typer.Option("--refresh", help="Measure again instead of using the cached figure.")
    ] = False,
    seconds: Annotated[
        float, typer.Option("--seconds", min=0.3, help="Timing per precision (3 windows).")
    ] = 1.5,
    json_out: JsonFlag = False,
) -> None:
    """Measure the machine's dense matmul peak (TFLOP/s) per precision, cache it per machine and TensorFlow version, and print it. Training summaries divide by this figure for MFU.

    Examples:

        nvlm benchmark peak

        nvlm benchmark peak --precision bf16 --refresh --json
    """
    from nvlm.bench.peaks import measure_peaks, parse_precisions, peaks_record

    results = measure_peaks(parse_precisions(precision), refresh=refresh, seconds=seconds)
    if json_out:
        emit_json(peaks_record(results))
        return
    table = Table(title="dense matmul peak of this machine", header_style="bold")
    for column in ("precision", "TFLOP/s", "device", "matmul", "timed", "measured"):
        table.add_column(column, justify="right" if column == "TFLOP/s" else "left")
    for p, was_cached in results:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(p.measured_at))
        table.add_row(
            p.precision,
            f"{p.tflops:.3f}",
            p.device,
            f"{p.size} x {p.size} x {p.size}",
            f"{p.matmuls} in {p.seconds:.2f} s (best of 3)",
            f"{when}{' (cached)' if was_cached else ''}",
        )
    print_result_table(table)
