"""The development scripts in benchmarks/ take their figures from `nvlm benchmark`'s harness:
statistics from `Latencies`, MFU over the measured peak, the harness's busy-machine guard."""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

import pytest

from nvlm.bench import timing
from nvlm.train import peak as peak_mod

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def common(monkeypatch):
    # Loaded from its file: `benchmarks` on sys.path is pysbd's package (benchmarks/README.md).
    spec = importlib.util.spec_from_file_location("bench_common", ROOT / "benchmarks" / "common.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bench_common", module)  # dataclasses look it up
    spec.loader.exec_module(module)
    return module


def _args(common, *argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    common.add_guard_options(parser, max_wait=7.0)
    return parser.parse_args(list(argv))


def test_timing_figures_are_the_harness_statistics(common):
    t = common.Timing(batch_size=8)
    t.run(lambda: time.sleep(0.002), 3)
    t.run(lambda: time.sleep(0.004), 2)  # a second round adds to the same figures
    lat = timing.Latencies(tuple(t.seconds))
    assert len(t.seconds) == 5
    assert t.percentile_ms(90) == lat.percentile_ms(90)
    assert t.median_s == pytest.approx(lat.percentile_ms(50) / 1e3)
    assert t.sequences_per_s == pytest.approx(8 / t.median_s)  # the scripts' median policy
    assert t.all_sequences_per_s == pytest.approx(lat.per_second(8))  # nvlm benchmark's


def test_mfu_divides_by_the_measured_peak_not_a_constant(common, monkeypatch):
    measured = peak_mod.Peak("bf16", 0.5, 2048, 10, 0.5, "CPU", time.time())
    monkeypatch.setattr(peak_mod, "peak", lambda precision: measured)
    monkeypatch.setattr(peak_mod, "cached", lambda precision: measured)
    assert not hasattr(common, "PEAK_FLOPS")
    line = common.peak_line(["bf16"])
    assert "bf16 0.500 TFLOP/s" in line and "measured" in line
    # 100 sequences/s x 2.5 GFLOP = 0.25 TFLOP/s: half of the measured 0.5.
    assert common.mfu(100.0, 2.5e9, "bf16") == pytest.approx(0.5)


def test_others_share_is_none_for_windows_too_short_to_measure(common):
    assert common.weighted_share([(0.9, 0.01), (0.0, 0.02)]) is None
    assert common.weighted_share([(0.3, 1.0), (0.0, 2.0)]) == pytest.approx(0.1)


def test_guard_options_default_to_nvlm_benchmark_and_read_the_old_max_load(common, monkeypatch):
    assert common.max_busy(_args(common)) == 0.25
    assert common.max_busy(_args(common, "--max-busy", "0.5", "--max-load", "9")) == 0.5
    monkeypatch.setattr(common.os, "cpu_count", lambda: 2)
    assert common.max_busy(_args(common, "--max-load", "1.5")) == pytest.approx(0.75)
    assert _args(common).max_wait == 7.0


def test_a_busy_machine_stops_the_script_with_the_harness_reason(common, monkeypatch):
    def busy(max_share, max_wait_s, *, say):
        raise timing.MachineBusy("other processes use 90% of this machine's 2 CPUs")

    monkeypatch.setattr(common.timing, "wait_until_quiet", busy)
    with pytest.raises(SystemExit) as stop:
        common.wait_quiet(_args(common))
    assert str(stop.value) == (
        "stopped: other processes use 90% of this machine's 2 CPUs (--max-busy 1 measures anyway)"
    )
