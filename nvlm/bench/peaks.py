"""`nvlm benchmark peak`'s measurement: the dense matmul peak of each asked precision, from the
cache of nvlm.train.peak or measured (and cached) now, and its machine-readable record."""

from __future__ import annotations

from dataclasses import asdict

from nvlm.errors import UserError
from nvlm.train import peak as peak_mod


def parse_precisions(text: str) -> list[str]:
    """`fp32,bf16` -> ["fp32", "bf16"]; an empty list or an unknown name is refused."""
    wanted = [p.strip().lower() for p in text.split(",") if p.strip()]
    unknown = [p for p in wanted if p not in peak_mod.PRECISIONS]
    if unknown or not wanted:
        raise UserError(
            f"--precision {text!r}: choose from {', '.join(peak_mod.PRECISIONS)} (comma-separated)"
        )
    return wanted


def measure_peaks(
    precisions: list[str], *, refresh: bool = False, seconds: float = 1.5
) -> list[tuple[peak_mod.Peak, bool]]:
    """(peak, whether it came from the cache) per precision, in the order asked."""
    results = []
    for name in precisions:
        was_cached = not refresh and peak_mod.cached(name) is not None
        results.append((peak_mod.peak(name, refresh=refresh, seconds=seconds), was_cached))
    return results


def peaks_record(results: list[tuple[peak_mod.Peak, bool]]) -> dict:
    """The --json record: this machine, where its figures are cached, and each peak."""
    return {
        "machine": peak_mod.machine(),
        "cache": str(peak_mod.cache_path()),
        "peaks": [{**asdict(p), "cached": c} for p, c in results],
    }
