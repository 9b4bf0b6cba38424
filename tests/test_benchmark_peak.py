"""`nvlm benchmark peak`: a measured matmul peak per precision, cached per machine, used as the
denominator of MFU (no nominal figure: an MFU above 100% is a bug)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from helpers import error_line, invoke

from nvlm.train import peak as peak_mod


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def test_measure_times_real_matmuls():
    result = peak_mod.measure("fp32", size=256, seconds=0.3)
    assert result.precision == "fp32" and result.size == 256 and result.device == "CPU"
    assert result.matmuls >= 1 and result.seconds > 0
    # The figure is the work timed over the time: 2 n^3 per matmul.
    assert result.tflops == pytest.approx(2 * 256**3 * result.matmuls / result.seconds / 1e12)


def test_the_peak_is_cached_per_machine_and_measured_again_on_refresh():
    first = peak_mod.peak("bf16", seconds=0.3)
    assert peak_mod.cache_path().exists()
    again = peak_mod.peak("bf16")
    assert again == first  # from the cache: same figure, same time of measurement
    cache = json.loads(peak_mod.cache_path().read_text())
    (key,) = cache
    assert peak_mod.machine()["cpu"] in key and "TF " in key
    fresh = peak_mod.peak("bf16", refresh=True, seconds=0.3)
    assert fresh.measured_at > first.measured_at


def test_command_prints_the_table_on_stdout_and_json_records():
    result = invoke("benchmark", "peak", "--precision", "fp32", "--seconds", "0.3")
    assert result.exit_code == 0, result.output
    assert "dense matmul peak of this machine" in result.stdout
    assert "fp32" in result.stdout and "2048 x 2048 x 2048" in result.stdout
    result = invoke("benchmark", "peak", "--precision", "fp32", "--json")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    (fp32,) = record["peaks"]
    assert fp32["precision"] == "fp32" and fp32["tflops"] > 0 and fp32["cached"] is True
    assert record["machine"]["cores"] >= 1 and record["machine"]["tensorflow"]


def test_unknown_precision_is_one_line():
    result = invoke("benchmark", "peak", "--precision", "fp8")
    assert "--precision 'fp8': choose from fp32, tf32, bf16, amp" in error_line(result)


def test_training_mfu_divides_by_the_measured_peak_of_the_whole_cpu():
    from nvlm.train.run import peak_flops

    measured = peak_mod.peak("fp32", seconds=0.3)
    cfg = SimpleNamespace(train=SimpleNamespace(precision="fp32", gpus=2))
    # On a CPU the processes share the machine: its peak, not 2x.
    assert peak_flops(cfg) == pytest.approx(measured.tflops * 1e12)
