"""`nvlm benchmark train|infer` end to end on tiny models: the published layouts, the records'
fields, a 2-process point that really runs 2 processes, --compare, interruption, bad input."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import error_line, invoke

NVLM = [sys.executable, "-m", "nvlm"]
RECORD_FIELDS = {
    "nvlm_benchmark", "kind", "model", "task", "size", "precision", "xla", "batch", "seq_len",
    "gpus", "throughput_seq_per_s", "throughput_tok_per_s", "mfu", "peak_tflops", "machine",
    "versions", "command", "date", "memory_mb", "memory_kind", "percentile_method",
}  # fmt: skip
INFER_FIELDS = RECORD_FIELDS | {
    "latency_avg_ms", "latency_p50_ms", "latency_p90_ms", "latency_p95_ms", "latency_p99_ms",
    "latency_max_ms", "latency_std_ms", "latency_per_sequence_avg_ms", "latency_per",
    "first_call_s", "warmup_s", "steps",
}  # fmt: skip
TRAIN_FIELDS = RECORD_FIELDS | {
    "accumulation", "global_batch", "step_time", "first_step_s", "warmup_s", "allreduce_ms",
    "allreduce_share", "throughput_per_process_seq_per_s", "world_size",
}  # fmt: skip


@pytest.mark.slow
def test_training_table_of_two_precisions_on_one_and_two_processes(tmp_path):
    out = tmp_path / "bench.jsonl"
    work = tmp_path / "work"
    work.mkdir()
    cmd = [*NVLM, "benchmark", "train", "--model", "bert", "--size", "tiny",
           "--precision", "fp32,bf16", "--gpus", "1,2", "--steps", "6", "--warmup", "1",
           "--max-busy", "1", "--out", str(out), "--workdir", str(work)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    table = done.stdout
    for header in ("fp32 (sequences/s)", "bf16 (sequences/s)", "speedup bf16 / fp32",
                   "weak scaling fp32", "weak scaling bf16", "allreduce"):  # fmt: skip
        assert header in table
    assert "2 processes (horovodrun)" in done.stderr
    records = [json.loads(x) for x in out.read_text().splitlines()]
    assert [(r["precision"], r["gpus"]) for r in records] == [
        ("fp32", 1), ("bf16", 1), ("fp32", 2), ("bf16", 2),
    ]  # fmt: skip
    for r in records:
        assert TRAIN_FIELDS <= set(r), TRAIN_FIELDS - set(r)
        assert r["world_size"] == r["gpus"]  # the 2-process rows ran in 2 Horovod ranks
        assert r["steps"] == 6 and r["warmup_steps"] == 1
        assert 0 < r["mfu"] <= 1.0
        assert (r["allreduce_ms"] is not None) == (r["gpus"] == 2)
    assert os.listdir(work) == []  # the sweep's temporary files are gone


@pytest.mark.parametrize(
    ("model", "task", "unit"),
    [
        ("bert", "squad", "sequences/s"),
        ("electra", "squad", "sequences/s"),
        ("transformer-xl", "lm", "tokens/s"),
    ],  # fmt: skip
)
def test_inference_tables_and_records_of_each_model(model, task, unit):
    result = invoke("benchmark", "infer", "--model", model, "--task", task, "--size", "tiny",
                    "--batch-sizes", "1,2", "--seq-len", "64", "--steps", "12",
                    "--max-busy", "1", "--json")  # fmt: skip
    assert result.exit_code == 0, result.output[-2000:]
    records = json.loads(result.stdout)
    assert [r["batch"] for r in records] == [1, 2]
    for r in records:
        assert INFER_FIELDS <= set(r), INFER_FIELDS - set(r)
        assert r["unit"] == unit and r["task"] == task and r["steps"] == 12
        assert r["latency_p50_ms"] <= r["latency_p90_ms"] <= r["latency_p95_ms"]
        assert r["latency_p95_ms"] <= r["latency_p99_ms"] <= r["latency_max_ms"]
        # average latency (per batch) x throughput = the batch
        assert r["latency_avg_ms"] / 1e3 * r["throughput_seq_per_s"] == pytest.approx(r["batch"])
        assert 0 < r["mfu"] <= 1.0
    if model == "transformer-xl":
        assert records[0]["mem_len"] == 640 and records[0]["seq_len"] == 64


def test_inference_point_reports_what_an_injected_clock_measured():
    from nvlm import registry
    from nvlm.bench import infer_bench
    from tests.test_benchmark_timing import FakeClock

    plugin = registry.get("bert")
    sweep = infer_bench.InferSweep(model="bert", task="features", preset=None, size="tiny",
                                   precisions=("fp32",), batch_sizes=(4,), seq_len=32,
                                   mem_len=None, xla=False, steps=5, warmup=0, init=None,
                                   sets=())  # fmt: skip
    cfg, _ = infer_bench.resolve(plugin, sweep, "fp32")
    warm = [0.5] * infer_bench.DISTINCT_BATCHES  # every distinct batch once, untimed
    timed = [0.010, 0.020, 0.030, 0.040, 0.100]
    record = infer_bench.measure_point(plugin, cfg, task="features", batch=4, steps=5, warmup=0,
                                       clock=FakeClock(warm + timed))  # fmt: skip
    assert record["warmup_steps"] == infer_bench.DISTINCT_BATCHES
    assert record["latency_avg_ms"] == pytest.approx(40.0)
    assert record["latency_p50_ms"] == pytest.approx(30.0)
    assert record["latency_p90_ms"] == pytest.approx(76.0)  # 40 + 0.6 x (100 - 40)
    assert record["latency_max_ms"] == pytest.approx(100.0)
    assert record["throughput_seq_per_s"] == pytest.approx(4 * 5 / 0.2)
    assert record["latency_per_sequence_avg_ms"] == pytest.approx(10.0)


@pytest.mark.parametrize(
    ("model", "task"), [("electra", "pretrain"), ("transformer-xl", "pretrain"), ("bert", "squad")]
)
def test_training_point_of_each_model_on_synthetic_data(model, task):
    result = invoke("benchmark", "train", "--model", model, "--task", task, "--size", "tiny",
                    "--batch-sizes", "2", "--seq-len", "64", "--steps", "3", "--warmup", "1",
                    "--max-busy", "1", "--json")  # fmt: skip
    assert result.exit_code == 0, result.output[-2000:]
    (r,) = json.loads(result.stdout)
    assert TRAIN_FIELDS <= set(r)
    assert r["batch"] == 2 and r["seq_len"] == 64 and r["data"] == "synthetic"
    assert r["throughput_seq_per_s"] > 0 and 0 < r["mfu"] <= 1.0
    assert r["unit"] == ("tokens/s" if model == "transformer-xl" else "sequences/s")


def test_markdown_tables_and_compare_on_a_machine_nvidia_did_not_publish(tmp_path):
    result = invoke("benchmark", "infer", "--model", "electra", "--size", "tiny",
                    "--batch-sizes", "1", "--seq-len", "64", "--steps", "3", "--max-busy", "1",
                    "--markdown", "--compare")  # fmt: skip
    assert result.exit_code == 0, result.output[-2000:]
    assert "| batch | throughput (sequences/s) | latency avg (ms) |" in result.stdout
    assert "compared with NVIDIA's published figures" in result.stdout
    assert "no published figure for" in result.stdout


def test_compare_puts_the_published_figure_beside_a_matching_point():
    from nvlm.bench.compare import comparisons

    record = {
        "kind": "train", "model": "electra", "size": "base", "task": "squad", "stage": "squad",
        "seq_len": 384, "gpus": 1, "precision": "amp", "batch": 32, "preset": "dgxa100-amp",
        "unit": "sequences/s", "throughput_seq_per_s": 301.0,
        "machine": {"gpus": ["NVIDIA A100-SXM4-40GB"], "cpu": "x"},
    }  # fmt: skip
    ((metric, figure, ratio),) = comparisons(record)
    assert metric == "throughput" and "285-317" in figure and ratio.startswith("1.00x")
    # The same configuration measured without an A100 is not compared with one.
    cpu = {**record, "machine": {"gpus": [], "cpu": "AMD EPYC"}}
    ((_, figure, why),) = comparisons(cpu)
    assert figure == "-" and why.startswith("not comparable: measured on AMD EPYC (no GPU)")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--precision", "fp16"], "--precision 'fp16': 'fp16' is not one of fp32, tf32, amp, bf16"),
        (["--gpus", "0"], "--gpus '0': give comma-separated whole numbers >= 1"),
        (["--batch-sizes", "8,x"], "--batch-sizes '8,x': give comma-separated whole numbers"),
        (["--task", "glue"], "--task 'glue': choose pretrain, squad or classify"),
        (["--task", "squad", "--data", "train.json"], "--task squad --data FILE needs --init"),
        (
            ["--task", "classify", "--data", "train.jsonl"],
            "--task classify --data FILE needs --init CHECKPOINT (its vocab tokenizes the file); "
            "drop --data to time synthetic text pairs",
        ),  # fmt: skip
        (["--markdown", "--json"], "--markdown and --json both print on stdout"),
    ],
)
def test_bad_training_options_are_one_line_errors(args, message):
    result = invoke("benchmark", "train", "--model", "bert", "--size", "tiny", *args)
    assert result.exit_code == 2, result.output
    assert message in error_line(result)


def test_infer_refuses_options_that_do_not_apply():
    result = invoke("benchmark", "infer", "--model", "bert", "--mem-len", "64")
    assert result.exit_code == 2 and "--mem-len applies to transformer-xl only" in error_line(
        result
    )
    result = invoke("benchmark", "infer", "--model", "transformer-xl", "--task", "squad")
    assert result.exit_code == 2 and "transformer-xl inference tasks are lm" in error_line(result)
    result = invoke("benchmark", "infer", "--model", "bert", "--task", "glue")
    assert "--task 'glue': bert inference tasks are squad, classify, features, mlm" in error_line(
        result
    )


def test_train_refuses_classify_for_a_model_without_its_head():
    result = invoke("benchmark", "train", "--model", "transformer-xl", "--task", "classify")
    assert "--task classify: transformer-xl has no classification head (use --task pretrain)" in (
        error_line(result)
    )


# --- classify: the fine-tuning spec and the classifier, on synthetic text pairs ------------------


def _finite(record: dict, *keys: str) -> None:
    for key in keys:
        assert isinstance(record[key], float) and math.isfinite(record[key]), (key, record[key])
        assert record[key] > 0, (key, record[key])


def test_classify_training_point_times_the_fine_tuning_step_on_synthetic_pairs():
    result = invoke("benchmark", "train", "--model", "bert", "--task", "classify", "--size",
                    "tiny", "--batch-sizes", "2", "--seq-len", "32", "--steps", "2", "--warmup",
                    "1", "--set", "model.num_labels=3", "--max-busy", "1", "--json")  # fmt: skip
    assert result.exit_code == 0, result.output[-2000:]
    (r,) = json.loads(result.stdout)
    assert TRAIN_FIELDS <= set(r), TRAIN_FIELDS - set(r)
    assert (r["task"], r["stage"], r["unit"]) == ("classify", "classify", "sequences/s")
    assert (r["batch"], r["seq_len"], r["steps"], r["data"]) == (2, 32, 2, "synthetic")
    _finite(r, "throughput_seq_per_s", "throughput_tok_per_s", "flops_per_sequence", "mfu")
    # Counted at the real lengths of the pairs (padding aside): under a full window's count.
    from nvlm import registry
    from nvlm.bench import train_bench

    plugin = registry.get("bert")
    sweep = train_bench.TrainSweep(model="bert", task="classify", phase=1, preset=None,
                                   size="tiny", precisions=("fp32",), batch_sizes=(2,),
                                   gpus=(1,), seq_len=32, accumulation=None, xla=None, steps=2,
                                   warmup=1, data=None, init=None, sets=())  # fmt: skip
    cfg, _ = train_bench.resolve(plugin, sweep, sweep.points()[0], None)
    full = plugin.flops_per_token(cfg, 32, task="classify") * 32
    assert 0 < r["flops_per_sequence"] < full


def test_classify_inference_points_of_electra_on_synthetic_pairs():
    result = invoke("benchmark", "infer", "--model", "electra", "--task", "classify", "--size",
                    "tiny", "--batch-sizes", "1,2", "--seq-len", "32", "--steps", "4",
                    "--warmup", "0", "--max-busy", "1", "--json")  # fmt: skip
    assert result.exit_code == 0, result.output[-2000:]
    records = json.loads(result.stdout)
    assert [r["batch"] for r in records] == [1, 2]
    for r in records:
        assert INFER_FIELDS <= set(r), INFER_FIELDS - set(r)
        assert (r["task"], r["stage"], r["unit"], r["latency_per"]) == (
            "classify", "classify", "sequences/s", "batch",
        )  # fmt: skip
        assert r["steps"] == 4 and r["seq_len"] == 32
        _finite(r, "throughput_seq_per_s", "latency_avg_ms", "latency_p90_ms",
                "latency_p99_ms", "flops_per_sequence", "mfu")  # fmt: skip


def test_out_never_appends_to_a_file_nvlm_did_not_write(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("keep me\n")
    result = invoke("benchmark", "infer", "--model", "bert", "--size", "tiny", "--out", str(notes))
    assert result.exit_code == 2
    assert "not a file of nvlm benchmark records" in error_line(result)
    assert notes.read_text() == "keep me\n"


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_stopped_sweep_prints_and_keeps_the_points_measured(tmp_path, signum, code):
    out = tmp_path / "bench.jsonl"
    cmd = [*NVLM, "benchmark", "infer", "--model", "bert", "--size", "tiny", "--seq-len", "64",
           "--batch-sizes", "1,2,4,8", "--steps", "3000", "--max-busy", "1", "--out", str(out)]  # fmt: skip
    # 3000 steps: the three points after the first take seconds, so the signal (sent as soon as
    # the first point is recorded) arrives mid-sweep even on a fast, idle machine.
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not (out.exists() and out.read_text().strip()):
        time.sleep(0.2)
    proc.send_signal(signum)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == code, stderr[-2000:]
    measured = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(measured) >= 1
    assert "inference, fp32" in stdout  # the table of the points measured so far
    assert f"interrupted: {len(measured)} of 4 points measured" in stderr


def test_inference_times_the_weights_and_architecture_of_an_init_checkpoint():
    run = Path(__file__).parent / "fixtures" / "before-architecture" / "run"
    result = invoke("benchmark", "infer", "--model", "bert", "--task", "features",
                    "--init", run, "--seq-len", "16", "--batch-sizes", "2", "--steps", "3",
                    "--max-busy", "1", "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    (r,) = json.loads(result.stdout)
    assert r["size"] == "custom" and r["seq_len"] == 16 and r["batch"] == 2  # the run's model
