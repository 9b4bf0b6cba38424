"""How every nvlm figure of speed is timed: synchronised calls, warm-up apart, true percentiles,
and a check that the machine is not busy with someone else's work.

Used by `nvlm benchmark train|infer` and by the development scripts in `benchmarks/`.

A timed call must return only when its work is done: the callers read a value back to the host
(`.numpy()` / `float(...)`) inside the call, so an asynchronous device cannot make a step look
free. The clock is a parameter, so that the statistics can be tested with known latencies.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

Clock = Callable[[], float]

# numpy's default: linear interpolation between the closest ranks (Hyndman & Fan type 7), so
# p50 is the median; named in every table and record.
PERCENTILE_METHOD = "linear"
PERCENTILES = (50, 90, 95, 99)


def time_calls(fn: Callable[[], object], n: int, clock: Clock = time.perf_counter) -> list[float]:
    """Seconds of each of `n` calls of `fn`."""
    out = []
    for _ in range(n):
        t0 = clock()
        fn()
        out.append(clock() - t0)
    return out


@dataclass(frozen=True)
class Latencies:
    """Statistics of measured per-call times (seconds in, milliseconds out)."""

    seconds: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.seconds:
            raise ValueError("no timed calls")

    @property
    def count(self) -> int:
        return len(self.seconds)

    @property
    def total_s(self) -> float:
        return float(math.fsum(self.seconds))

    @property
    def mean_ms(self) -> float:
        return self.total_s / self.count * 1e3

    @property
    def std_ms(self) -> float:
        return float(np.std(np.asarray(self.seconds), ddof=1)) * 1e3 if self.count > 1 else 0.0

    @property
    def max_ms(self) -> float:
        return max(self.seconds) * 1e3

    @property
    def min_ms(self) -> float:
        return min(self.seconds) * 1e3

    def percentile_ms(self, q: float) -> float:
        return float(np.percentile(np.asarray(self.seconds), q, method=PERCENTILE_METHOD)) * 1e3

    def per_second(self, items_per_call: float) -> float:
        """Throughput over the timed calls: every item / every second (not 1 / the median)."""
        return items_per_call * self.count / self.total_s

    def summary(self, prefix: str = "latency") -> dict[str, float]:
        out = {f"{prefix}_avg_ms": self.mean_ms}
        for q in PERCENTILES:
            out[f"{prefix}_p{q}_ms"] = self.percentile_ms(q)
        out[f"{prefix}_max_ms"] = self.max_ms
        out[f"{prefix}_std_ms"] = self.std_ms
        return out


# --------------------------------------------------------------------------- the machine's load
def _cpu_jiffies() -> tuple[int, int] | None:
    """(busy, total) CPU time of the whole machine since boot, in clock ticks."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except (OSError, IndexError):
        return None
    values = [int(x) for x in fields]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return sum(values[:8]) - idle, sum(values[:8])


def foreign_cpu(seconds: float = 1.0, sleep: Callable[[float], None] = time.sleep) -> float | None:
    """Share of the machine's CPUs (0-1) busy with other processes over `seconds`, measured
    while this process sleeps; None where /proc/stat does not exist."""
    before = _cpu_jiffies()
    own0 = sum(os.times()[:4])
    sleep(seconds)
    after = _cpu_jiffies()
    if before is None or after is None or after[1] <= before[1]:
        return None
    own = (sum(os.times()[:4]) - own0) * os.sysconf("SC_CLK_TCK")
    return max(0.0, (after[0] - before[0] - own) / (after[1] - before[1]))


class MachineBusy(Exception):
    """Other processes keep the machine too busy for figures that mean anything."""


def wait_until_quiet(
    max_share: float,
    max_wait_s: float,
    *,
    say: Callable[[str], None],
    probe: Callable[[], float | None] = foreign_cpu,
    clock: Clock = time.monotonic,
) -> float | None:
    """Wait (bounded) until other processes use at most `max_share` of the CPUs; return the
    share seen last, or raise `MachineBusy` saying what was seen. A share of 1 accepts any."""
    share = probe()
    if share is None or max_share >= 1.0:
        return share
    deadline = clock() + max_wait_s
    told = False
    while share is not None and share > max_share:
        if clock() >= deadline:
            raise MachineBusy(
                f"other processes use {100 * share:.0f}% of this machine's {os.cpu_count()} "
                f"CPUs (limit {100 * max_share:.0f}%) after waiting {max_wait_s:.0f} s: the "
                "figures would measure them, not nvlm"
            )
        if not told:
            say(
                f"other processes use {100 * share:.0f}% of the CPUs; waiting up to "
                f"{max_wait_s:.0f} s for them to finish"
            )
            told = True
        share = probe()
    return share


# --------------------------------------------------------------------------------- memory
def reset_peak_rss() -> bool:
    """Reset this process's peak resident size (VmHWM) to its current size (Linux >= 4.0), so
    that the next `peak_rss_mb` is the peak of what ran in between."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float | None:
    """Peak resident memory of this process (since `reset_peak_rss`), MB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def device_memory_mb(reset: bool = False) -> float | None:
    """Peak memory TensorFlow reports for GPU 0 (MB), None without a GPU; `reset` starts a new
    peak."""
    import tensorflow as tf

    if not tf.config.list_physical_devices("GPU"):
        return None
    if reset:
        tf.config.experimental.reset_memory_stats("GPU:0")
        return None
    return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20


def memory_start() -> None:
    """Start measuring a point's peak memory (device on a GPU, resident on a CPU)."""
    if device_memory_mb(reset=True) is None:
        reset_peak_rss()


def memory_peak() -> tuple[float | None, str]:
    """(MB, what was measured) since `memory_start`."""
    device = device_memory_mb()
    if device is not None:
        return device, "GPU 0 peak allocated"
    return peak_rss_mb(), "peak resident (RSS) of the process"
