"""The timing harness of `nvlm benchmark`: statistics from an injected clock with known
latencies, the busy-machine guard, the JSONL records file, the published-layout tables."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nvlm.bench import records, tables, timing
from nvlm.errors import UserError


class FakeClock:
    """A clock whose k-th timed call lasts `latencies[k]` seconds (two reads per call)."""

    def __init__(self, latencies):
        self.latencies = list(latencies)
        self.now = 100.0
        self.reads = 0

    def __call__(self) -> float:
        if self.reads % 2 == 1:
            self.now += self.latencies[self.reads // 2]
        self.reads += 1
        return self.now


def test_percentiles_of_known_latencies_are_ordered_and_exact():
    latencies = [0.001 * k for k in range(1, 101)]  # 1..100 ms, shuffled below
    rng = np.random.default_rng(0)
    shuffled = list(rng.permutation(latencies))
    seconds = timing.time_calls(lambda: None, 100, FakeClock(shuffled))
    lat = timing.Latencies(tuple(seconds))
    s = lat.summary()
    assert s["latency_p50_ms"] <= s["latency_p90_ms"] <= s["latency_p95_ms"]
    assert s["latency_p95_ms"] <= s["latency_p99_ms"] <= s["latency_max_ms"]
    # Linear interpolation between closest ranks: p90 of 1..100 is 90.1, p99 is 99.01.
    assert s["latency_p50_ms"] == pytest.approx(50.5)
    assert s["latency_p90_ms"] == pytest.approx(90.1)
    assert s["latency_p99_ms"] == pytest.approx(99.01)
    assert s["latency_max_ms"] == pytest.approx(100.0)
    assert s["latency_avg_ms"] == pytest.approx(50.5)
    assert s["latency_std_ms"] == pytest.approx(np.std(np.arange(1, 101), ddof=1))


def test_throughput_times_average_latency_is_the_batch():
    lat = timing.Latencies((0.010, 0.020, 0.030, 0.100))
    batch = 8
    assert lat.per_second(batch) * lat.mean_ms / 1e3 == pytest.approx(batch)


def test_a_tail_latency_shows_in_p99_and_max_not_in_the_median():
    lat = timing.Latencies(tuple([0.010] * 99 + [1.0]))
    assert lat.percentile_ms(50) == pytest.approx(10.0)
    assert lat.max_ms == pytest.approx(1000.0)
    assert lat.percentile_ms(99) > 10.0


def test_no_timed_calls_is_an_error_not_a_zero():
    with pytest.raises(ValueError):
        timing.Latencies(())


def test_a_busy_machine_is_waited_for_then_measured():
    shares = iter([0.9, 0.8, 0.1])
    said = []
    t = iter(range(100))
    share = timing.wait_until_quiet(
        0.25, 60, say=said.append, probe=lambda: next(shares), clock=lambda: next(t)
    )
    assert share == 0.1
    assert len(said) == 1 and "90%" in said[0]


def test_a_machine_that_stays_busy_stops_the_benchmark_with_what_was_seen():
    t = iter(range(0, 1000, 30))
    with pytest.raises(timing.MachineBusy, match=r"other processes use 70% .* after waiting 60 s"):
        timing.wait_until_quiet(0.25, 60, say=lambda s: None, probe=lambda: 0.7,
                                clock=lambda: next(t))  # fmt: skip


def test_max_busy_one_accepts_any_load():
    assert timing.wait_until_quiet(1.0, 0, say=lambda s: None, probe=lambda: 0.99) == 0.99


def test_foreign_cpu_is_a_share_or_unknown():
    share = timing.foreign_cpu(0.2)
    assert share is None or 0.0 <= share <= 1.0


def test_peak_memory_is_reset_between_points():
    timing.memory_start()
    before = timing.peak_rss_mb()
    big = np.ones(64 * 2**20 // 8)  # 64 MB
    big[::4096] = 2.0
    grown = timing.peak_rss_mb()
    del big
    assert grown >= before + 50
    if timing.reset_peak_rss():
        assert timing.peak_rss_mb() < grown - 50


# ------------------------------------------------------------------------------- records file
def test_records_are_appended_to_a_file_of_records_and_never_to_another(tmp_path):
    out = tmp_path / "bench.jsonl"
    records.check_out(out, {})
    records.append(out, [{records.MARK: 1, "a": 1}])
    records.check_out(out, {})  # ours: appended to
    records.append(out, [{records.MARK: 1, "a": 2}])
    assert [json.loads(x)["a"] for x in out.read_text().splitlines()] == [1, 2]
    foreign = tmp_path / "notes.txt"
    foreign.write_text("my notes\n")
    with pytest.raises(UserError, match="not a file of nvlm benchmark records"):
        records.check_out(foreign, {})
    assert foreign.read_text() == "my notes\n"
    with pytest.raises(UserError, match="is a directory"):
        records.check_out(tmp_path, {})


def test_a_record_names_machine_versions_command_and_date():
    r = records.base_record("train")
    assert r[records.MARK] == 1 and r["kind"] == "train"
    assert r["machine"]["cores"] >= 1 and "cpu" in r["machine"]
    assert r["versions"]["tensorflow"] and r["versions"]["keras"] and r["versions"]["nvlm"]
    assert r["command"].startswith("nvlm") and r["date"].endswith("Z")


# -------------------------------------------------------------------------------------- tables
def _train(precision, gpus, batch, seq_s, acc=1):
    return {
        "model": "bert", "task": "pretrain", "stage": "pretrain_phase1", "size": "tiny",
        "precision": precision, "xla": False, "gpus": gpus, "batch": batch, "seq_len": 128,
        "accumulation": acc, "global_batch": batch * acc * gpus, "steps": 20,
        "warmup_steps": 5, "unit": "sequences/s", "throughput_seq_per_s": seq_s,
        "throughput_tok_per_s": seq_s * 128, "throughput_per_process_seq_per_s": seq_s / gpus,
        "step_time": {"step_avg_ms": 1.0, "step_p50_ms": 1.0, "step_p99_ms": 1.0},
        "allreduce_ms": None, "allreduce_share": None, "mfu": 0.1, "peak_tflops": 0.2,
        "first_step_s": 1.0, "memory_mb": 100.0, "memory_kind": "rss",
    }  # fmt: skip


def test_training_table_has_speedup_and_weak_scaling_of_each_precision():
    recs = [
        _train("fp32", 1, 8, 10.0), _train("bf16", 1, 8, 20.0),
        _train("fp32", 2, 8, 18.0), _train("bf16", 2, 8, 30.0),
    ]  # fmt: skip
    grid = tables.train_grids(recs)[0]
    assert grid.columns[3:] == [
        "fp32 (sequences/s)", "bf16 (sequences/s)", "speedup bf16 / fp32",
        "weak scaling fp32", "weak scaling bf16",
    ]  # fmt: skip
    assert grid.rows[0][3:] == ["10.0", "20.0", "2.00x", "1.00x", "1.00x"]
    assert grid.rows[1][3:] == ["18.0", "30.0", "1.67x", "1.80x", "1.50x"]
    md = tables.train_grids(recs)[0].markdown()
    assert "| 2 | 8 | 1 | 18.0 | 30.0 | 1.67x | 1.80x | 1.50x |" in md


def test_mfu_counts_the_flops_of_real_tokens_not_padding():
    from nvlm.train.trainer import sequence_flops

    # FLOPs per token 2n at length n: sequences of 1, 2 and 2 real tokens.
    assert sequence_flops(lambda n: 2.0 * n, [1, 2, 2]) == pytest.approx((2 + 8 + 8) / 3)
    # Padded to 4, the count would be 32 per sequence: 5x more than the work done.
    assert sequence_flops(lambda n: 2.0 * n, [4, 4, 4]) == pytest.approx(32)
