"""`nvlm benchmark`: measured figures of this machine (library: nvlm.bench).

So far `peak`, the dense matmul peak that every MFU nvlm prints is divided by.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Annotated

import typer
from rich.table import Table

from nvlm.cli.options import JsonFlag
from nvlm.errors import UserError
from nvlm.report import emit_json, print_result_table

app = typer.Typer(
    no_args_is_help=True,
    help="Measure this machine: its dense matmul peak per precision (the denominator of MFU).",
)


@app.command("peak")
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
    from nvlm.bench import peak as peak_mod

    wanted = [p.strip().lower() for p in precision.split(",") if p.strip()]
    unknown = [p for p in wanted if p not in peak_mod.PRECISIONS]
    if unknown or not wanted:
        raise UserError(
            f"--precision {precision!r}: choose from {', '.join(peak_mod.PRECISIONS)} "
            "(comma-separated)"
        )
    results = []
    for name in wanted:
        was_cached = not refresh and peak_mod.cached(name) is not None
        results.append((peak_mod.peak(name, refresh=refresh, seconds=seconds), was_cached))
    if json_out:
        emit_json(
            {
                "machine": peak_mod.machine(),
                "cache": str(peak_mod.cache_path()),
                "peaks": [{**asdict(p), "cached": c} for p, c in results],
            }
        )
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
