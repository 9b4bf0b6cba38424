"""The tables `nvlm benchmark` prints, in the layouts of NVIDIA's published results.

Training: a row per (processes, batch per process) with accumulation, a throughput column per
precision, the speedup of each mixed precision over the full one and the weak scaling of each
precision (throughput with N processes / with 1, same batch per process); then the details of
every point. Inference: one table per precision, a row per batch size, throughput and latency
average / p90 / p95 / p99 per batch, per sequence beside it.

A table is data (`Grid`) rendered as a rich table or as Markdown (`--markdown`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

FULL = ("fp32", "tf32")  # the published "full precision" columns
MIXED = ("amp", "bf16")
TITLES = {"bert": "BERT", "electra": "ELECTRA", "transformer-xl": "Transformer-XL"}


@dataclass
class Grid:
    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def rich(self):
        from rich.table import Table

        table = Table(title=self.title, header_style="bold", title_justify="left")
        for i, name in enumerate(self.columns):
            table.add_column(name, justify="left" if i == 0 else "right")
        for row in self.rows:
            table.add_row(*row)
        if self.notes:
            table.caption = " ".join(self.notes)
            table.caption_justify = "left"
        return table

    def markdown(self) -> str:
        lines = [f"**{self.title}**", ""]
        lines.append("| " + " | ".join(self.columns) + " |")
        lines.append(
            "|" + "|".join("---" if i == 0 else "---:" for i in range(len(self.columns))) + "|"
        )
        lines += ["| " + " | ".join(r) + " |" for r in self.rows]
        lines += [""] + [f"{n}" for n in self.notes] if self.notes else []
        return "\n".join(lines) + "\n"


def _num(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "n/a"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def _ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def what(record: dict[str, Any]) -> str:
    """e.g. "BERT base pretraining phase 1 (seq 128)"."""
    name = TITLES.get(record["model"], record["model"])
    size = record.get("size") or ""
    task = record["task"]
    if task == "pretrain":
        phase = str(record.get("stage", "")).replace("pretrain_phase", "")
        job = f"pretraining phase {phase}" if phase.isdigit() else "pretraining"
        return f"{name} {size} {job} (seq {record['seq_len']})"
    if task == "squad":
        return f"{name} {size} SQuAD (seq {record['seq_len']})"
    if task == "classify":
        return f"{name} {size} classification (seq {record['seq_len']})"
    if task == "lm":
        mem = f", mem {record['mem_len']}" if record.get("mem_len") is not None else ""
        return f"{name} {size} language model (tgt {record['seq_len']}{mem})"
    return f"{name} {size} {task} (seq {record['seq_len']})"


def machine_line(record: dict[str, Any]) -> str:
    m = record.get("machine") or {}
    gpus = m.get("gpus") or []
    device = (
        f"{len(gpus)}x {gpus[0]}" if gpus else f"{m.get('cpu', '?')}, {m.get('cores', '?')} cores"
    )
    v = record.get("versions") or {}
    return f"{device}; TensorFlow {v.get('tensorflow')}, Keras {v.get('keras')}"


def _throughput(record: dict[str, Any]) -> float:
    if record["unit"] == "tokens/s":
        return record["throughput_tok_per_s"]
    return record["throughput_seq_per_s"]


# ----------------------------------------------------------------------------------- training
def train_grids(records: list[dict[str, Any]]) -> list[Grid]:
    if not records:
        return []
    first = records[0]
    unit = first["unit"]
    precisions = list(dict.fromkeys(r["precision"] for r in records))
    full = [p for p in precisions if p in FULL]
    mixed = [p for p in precisions if p in MIXED]
    keys = list(dict.fromkeys((r["gpus"], r["batch"]) for r in records))
    by = {(r["gpus"], r["batch"], r["precision"]): r for r in records}
    columns = ["processes", "batch / process", "accumulation"]
    columns += [f"{p} ({unit})" for p in precisions]
    base = full[0] if full else None
    speedups = [(m, base) for m in mixed] if base else []
    columns += [f"speedup {m} / {b}" for m, b in speedups]
    columns += [f"weak scaling {p}" for p in precisions]
    grid = Grid(f"{what(first)}: training throughput", columns)
    for gpus, batch in keys:
        row_records = [by.get((gpus, batch, p)) for p in precisions]
        accs = list(dict.fromkeys(r["accumulation"] for r in row_records if r))
        row = [str(gpus), str(batch), " / ".join(str(a) for a in accs)]
        row += [_num(_throughput(r)) if r else "-" for r in row_records]
        for m, b in speedups:
            rm, rb = by.get((gpus, batch, m)), by.get((gpus, batch, b))
            row.append(_ratio(_throughput(rm) / _throughput(rb)) if rm and rb else "-")
        for p in precisions:
            r, one = by.get((gpus, batch, p)), by.get((1, batch, p))
            row.append(_ratio(_throughput(r) / _throughput(one)) if r and one else "-")
        grid.rows.append(row)
    grid.notes = [
        f"Throughput = global batch x {first['steps']} timed steps / their time, after "
        f"{first['warmup_steps']} warm-up steps; weak scaling = throughput with N processes / "
        "with 1 at the same batch per process. " + machine_line(first) + "."
    ]
    return [grid, train_details(records)]


def train_details(records: list[dict[str, Any]]) -> Grid:
    columns = [
        "precision", "processes", "batch", "acc", "global batch", "step avg (ms)",
        "step p50 (ms)", "step p99 (ms)", "sequences/s", "per process", "allreduce (ms, share)",
        "MFU %", "first step (s)", "memory (MB)",
    ]  # fmt: skip
    grid = Grid("every point", columns)
    for r in records:
        st = r["step_time"]
        allreduce = "-"
        if r.get("allreduce_ms") is not None:
            allreduce = f"{r['allreduce_ms']:.1f} ({100 * r['allreduce_share']:.0f}%)"
        grid.rows.append([
            r["precision"] + (" +XLA" if r.get("xla") else ""),
            str(r["gpus"]),
            str(r["batch"]),
            str(r["accumulation"]),
            f"{r['global_batch']:,}",
            _num(st["step_avg_ms"]),
            _num(st["step_p50_ms"]),
            _num(st["step_p99_ms"]),
            _num(r["throughput_seq_per_s"], 2),
            _num(r["throughput_per_process_seq_per_s"], 2),
            allreduce,
            "n/a" if r.get("mfu") is None else f"{100 * r['mfu']:.1f}",
            _num(r.get("first_step_s"), 2),
            _num(r.get("memory_mb"), 0),
        ])  # fmt: skip
    kinds = {r.get("memory_kind") for r in records}
    grid.notes = [
        "allreduce: one step's gradients reduced alone (Horovod grouped allreduce), share of "
        f"the average step. MFU: model FLOPs / the measured dense peak "
        f"({', '.join(_peaks(records))}). Memory: {', '.join(sorted(k for k in kinds if k))}."
    ]
    return grid


def _peaks(records: list[dict[str, Any]]) -> list[str]:
    seen = {}
    for r in records:
        if r.get("peak_tflops"):
            seen.setdefault(r["precision"], r["peak_tflops"])
    return [f"{p} {v:.3f} TFLOP/s" for p, v in seen.items()] or ["not measured"]


# ---------------------------------------------------------------------------------- inference
def infer_grids(records: list[dict[str, Any]]) -> list[Grid]:
    grids = []
    for precision in dict.fromkeys(r["precision"] for r in records):
        rows = [r for r in records if r["precision"] == precision]
        first = rows[0]
        unit = first["unit"]
        columns = [
            "batch", f"throughput ({unit})", "latency avg (ms)", "p90 (ms)", "p95 (ms)",
            "p99 (ms)", "max (ms)", "std (ms)", "per sequence avg (ms)", "MFU %",
            "first batch (s)", "memory (MB)",
        ]  # fmt: skip
        xla = " +XLA" if first.get("xla") else ""
        grid = Grid(f"{what(first)}: inference, {precision}{xla}", columns)
        for r in rows:
            grid.rows.append([
                str(r["batch"]),
                _num(_throughput(r)),
                _num(r["latency_avg_ms"], 2),
                _num(r["latency_p90_ms"], 2),
                _num(r["latency_p95_ms"], 2),
                _num(r["latency_p99_ms"], 2),
                _num(r["latency_max_ms"], 2),
                _num(r["latency_std_ms"], 2),
                _num(r["latency_per_sequence_avg_ms"], 3),
                "n/a" if r.get("mfu") is None else f"{100 * r['mfu']:.1f}",
                _num(r.get("first_call_s"), 2),
                _num(r.get("memory_mb"), 0),
            ])  # fmt: skip
        grid.notes = [
            f"Latency per batch (a call returning every output to the host) over {first['steps']} "
            f"timed batches after {first['warmup_steps']} warm-up; per sequence = per batch / "
            "batch. Percentiles: linear interpolation between the closest ranks. "
            + machine_line(first)
            + "."
        ]
        grids.append(grid)
    return grids
