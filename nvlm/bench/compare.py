"""`--compare`: NVIDIA's published figure beside each measured point that matches a published
configuration, with the ratio; a one-line reason for every point that does not.

A point matches when the preset's system and GPU, the model, size, task, sequence length,
precision, batch per GPU and GPU count are those of a figure in `nvlm/resources/published.yaml`
(nvlm.bench.published) AND the machine that measured it has that GPU: a `--preset dgxa100-amp`
run on a CPU is not compared with a DGX A100.
"""

from __future__ import annotations

from typing import Any

from nvlm.bench import published
from nvlm.bench.tables import Grid, what

METRICS = {
    "train": (("throughput", None),),
    "infer": (
        ("throughput", None),
        ("latency_avg", "latency_avg_ms"),
        ("latency_p90", "latency_p90_ms"),
        ("latency_p95", "latency_p95_ms"),
        ("latency_p99", "latency_p99_ms"),
    ),
}


def _ours(record: dict[str, Any], key: str | None) -> float:
    if key is not None:
        return record[key]
    if record["unit"] == "tokens/s":
        return record["throughput_tok_per_s"]
    return record["throughput_seq_per_s"]


def _phase(record: dict[str, Any]) -> int | None:
    stage = str(record.get("stage", ""))
    return int(stage[-1]) if stage.startswith("pretrain_phase") else None


def _gpu_present(gpu: str, record: dict[str, Any]) -> bool:
    """Does the measuring machine have the published GPU (its model, e.g. A100 or V100)?"""
    model = gpu.split("-")[0].upper()
    return any(model in str(name).upper() for name in record["machine"].get("gpus") or [])


def comparisons(record: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(metric, NVIDIA's figure, ratio) rows for a record, or one (what, "-", why) row."""
    system = published.system_of_preset(record.get("preset"))
    gpu = published.gpu_of_preset(record.get("preset"))
    keys = dict(
        kind=record["kind"],
        model=record["model"],
        size=record.get("size") or "",
        task=record["task"],
        phase=_phase(record),
        seq_len=record["seq_len"],
        system=system,
        gpus=record["gpus"],
        precision=record["precision"],
        batch=record["batch"],
        gpu=gpu,
        mem_len=record.get("mem_len"),
    )
    rows = []
    for metric, key in METRICS[record["kind"]]:
        found = published.matches(metric=metric, **keys)
        if found and not _gpu_present(found[0].gpu, record):
            machine = ", ".join(record["machine"].get("gpus") or []) or (
                f"{record['machine'].get('cpu')} (no GPU)"
            )
            rows.append((metric, "-", f"not comparable: measured on {machine}, not on a "
                         f"{found[0].gpu}; {found[0].describe()}"))  # fmt: skip
            continue
        for figure in found:
            rows.append((metric, figure.describe(), figure.ratio(_ours(record, key))))
    if rows:
        return rows
    note = published.no_match_note(metric="throughput", **keys)
    return [("throughput", "-", note)]


def compare_grid(records: list[dict[str, Any]]) -> Grid:
    grid = Grid(
        f"{what(records[0])}: compared with NVIDIA's published figures",
        ["point", "metric", "NVIDIA published", "ours / NVIDIA"],
    )
    for r in records:
        point = f"{r['precision']}, {r['gpus']} x batch {r['batch']}"
        rows = r.get("published")
        rows = [(x["metric"], x["figure"], x["ratio"]) for x in rows] if rows else comparisons(r)
        for metric, figure, ratio in rows:
            grid.rows.append([point, metric, figure, ratio])
    grid.notes = ["Published figures: nvlm/resources/published.yaml (sources in the file)."]
    return grid
