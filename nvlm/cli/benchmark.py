"""`nvlm benchmark`: measured figures of this machine (library: nvlm.bench).

`train` and `infer` time the three models in the layouts of NVIDIA's published tables; `peak`
measures the dense matmul peak that every MFU nvlm prints is divided by.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from nvlm.cli.options import (
    ConfigFile,
    ControllerOption,
    HostfileOption,
    HostsOption,
    JsonFlag,
    LauncherOption,
    ModelOption,
    SetOption,
)
from nvlm.errors import UserError
from nvlm.report import emit_json, print_result_table

app = typer.Typer(
    no_args_is_help=True,
    help="Measure this machine: training and inference throughput and latency of the three "
    "models, in the layouts of NVIDIA's published tables, and its dense matmul peak.",
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
    from nvlm.train import peak as peak_mod

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


# -- options shared by train and infer -----------------------------------------------------------
PresetOption = Annotated[
    str | None,
    typer.Option(
        "--preset",
        help="Hardware preset (nvlm presets list) or a YAML path: batch per process, "
        "accumulation, precision and XLA default to its recipe.",
    ),
]
SizeOption = Annotated[
    str | None, typer.Option("--size", help="Model size: tiny | small | base | large.")
]
PrecisionsOption = Annotated[
    str | None,
    typer.Option(
        "--precision",
        help="Comma-separated precisions, each a column or table: fp32, tf32, amp, bf16 "
        "(default: the preset's, else fp32).",
    ),
]
BatchSizesOption = Annotated[
    str | None,
    typer.Option("--batch-sizes", help="Comma-separated batch sizes per process, e.g. 8,16."),
]
SeqLenOption = Annotated[
    int | None,
    typer.Option("--seq-len", min=1, help="Sequence length (Transformer-XL: tgt_len)."),
]
XlaOption = Annotated[
    bool | None, typer.Option("--xla/--no-xla", help="XLA-compile the step (default: preset).")
]
InitOption = Annotated[
    str | None,
    typer.Option(
        "--init", help="Weights to time (an nvlm run, a Hugging Face directory...): default random."
    ),
]
MarkdownFlag = Annotated[
    bool, typer.Option("--markdown", help="Print the tables as Markdown on stdout.")
]
OutFileOption = Annotated[
    Path | None,
    typer.Option(
        "--out",
        "-o",
        help="Append one JSON record per point to this file (JSONL), as each is measured.",
    ),
]
CompareFlag = Annotated[
    bool,
    typer.Option(
        "--compare",
        help="Print NVIDIA's published figure beside each point that matches a published "
        "configuration (the preset's system, precision, batch, GPUs), with the ratio.",
    ),
]
MaxBusyOption = Annotated[
    float,
    typer.Option(
        "--max-busy",
        min=0.0,
        max=1.0,
        help="Stop when other processes keep more than this share of the CPUs busy for "
        "--max-wait seconds (their load would be measured, not nvlm's); 1 measures anyway.",
    ),
]
MaxWaitOption = Annotated[
    float, typer.Option("--max-wait", min=0.0, help="Seconds to wait for a busy machine.")
]


def _list(text: str | None, option: str, cast, allowed=None) -> tuple | None:
    if text is None:
        return None
    items = [t.strip().lower() for t in text.split(",") if t.strip()]
    try:
        values = tuple(dict.fromkeys(cast(t) for t in items))
    except ValueError:
        values = ()
    if not values or (allowed is None and min(values) < 1):
        raise UserError(f"{option} {text!r}: give comma-separated whole numbers >= 1, e.g. 1,8")
    if allowed is not None:
        bad = [v for v in values if v not in allowed]
        if bad:
            raise UserError(
                f"{option} {text!r}: {bad[0]!r} is not one of {', '.join(allowed)} "
                "(comma-separated)"
            )
    return values


PRECISIONS = ("fp32", "tf32", "amp", "bf16")


def _report(outcome, grids_of, *, markdown: bool, json_out: bool, compare: bool) -> None:
    from nvlm.report import emit_json

    if json_out:
        emit_json(outcome.records)
    elif outcome.records:
        grids = grids_of(outcome.records)
        if compare:
            from nvlm.bench.compare import compare_grid

            grids.append(compare_grid(outcome.records))
        if markdown:
            import sys

            sys.stdout.write("\n".join(g.markdown() for g in grids))
            sys.stdout.flush()
        else:
            for grid in grids:
                print_result_table(grid.rich())
    if outcome.stopped is not None:
        raise outcome.stopped


def _check_outputs(markdown: bool, json_out: bool, out: Path | None, inputs: dict) -> None:
    """Before anything runs: one stdout format, and an --out that is a records file of ours."""
    from nvlm.bench import records

    if markdown and json_out:
        raise UserError("--markdown and --json both print on stdout: choose one")
    records.check_out(out, {k: Path(v) if v else None for k, v in inputs.items()})


def _recorder(out: Path | None, compare: bool):
    from nvlm.bench import records

    def on_record(record: dict) -> None:
        if compare:
            from nvlm.bench.compare import comparisons

            record["published"] = [
                {"metric": m, "figure": f, "ratio": r} for m, f, r in comparisons(record)
            ]
        if out is not None:
            records.append(out, [record])

    return on_record


@app.command("train")
def train(
    model: ModelOption,
    task: Annotated[
        str, typer.Option("--task", help="pretrain (BERT, ELECTRA, Transformer-XL) | squad.")
    ] = "pretrain",
    phase: Annotated[
        int, typer.Option("--phase", min=1, max=2, help="Pretraining phase: 1 (seq 128), 2 (512).")
    ] = 1,
    preset: PresetOption = None,
    size: SizeOption = None,
    precision: PrecisionsOption = None,
    batch_sizes: BatchSizesOption = None,
    seq_len: SeqLenOption = None,
    accumulation: Annotated[
        int | None,
        typer.Option(
            "--accumulation",
            min=1,
            help="Micro-batches per optimizer step (default: the preset's, re-derived for "
            "each process count so the global batch stays fixed).",
        ),
    ] = None,
    gpus: Annotated[
        str,
        typer.Option(
            "--gpus",
            help="Comma-separated process counts, one row each, e.g. 1,2,4,8 (CPU processes on "
            "a machine without GPUs), each launched as nvlm pretrain --gpus N launches.",
        ),
    ] = "1",
    xla: XlaOption = None,
    steps: Annotated[
        int, typer.Option("--steps", min=1, help="Timed optimizer steps per point.")
    ] = 30,
    warmup: Annotated[
        int, typer.Option("--warmup", min=0, help="Untimed steps first (compilation included).")
    ] = 5,
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            help="Real data: shards (pretrain) or a SQuAD JSON with --init (squad). Default: "
            "synthetic data of the real format and statistics.",
        ),
    ] = None,
    init: InitOption = None,
    sets: SetOption = None,
    launcher: LauncherOption = "auto",
    hosts: HostsOption = None,
    hostfile: HostfileOption = None,
    controller: ControllerOption = "auto",
    workdir: Annotated[
        Path | None,
        typer.Option(
            "--workdir",
            help="Where points keep their temporary files (removed at the end); on several "
            "nodes a directory every node sees. Default: the system's temporary directory.",
        ),
    ] = None,
    max_busy: MaxBusyOption = 0.25,
    max_wait: MaxWaitOption = 120.0,
    compare: CompareFlag = False,
    markdown: MarkdownFlag = False,
    out: OutFileOption = None,
    json_out: JsonFlag = False,
) -> None:
    """Time training steps (forward, backward, allreduce, optimizer) of a model over precisions x process counts x batch sizes, and print the published tables' layout: throughput per precision, speedup, weak scaling, then every point's step times, allreduce share, MFU and memory.

    Examples:

        nvlm benchmark train -m bert --size tiny --precision fp32,bf16 --gpus 1,2

        nvlm benchmark train -m electra --preset dgxa100-amp --gpus 1,8 --compare

        nvlm benchmark train -m transformer-xl --size base --markdown
    """
    from nvlm.bench import sweep, train_bench
    from nvlm.launch.training import LaunchOptions

    sweep_spec = train_bench.TrainSweep(
        model=model,
        task=task.strip().lower(),
        phase=phase,
        preset=preset,
        size=size,
        precisions=_list(precision, "--precision", str, PRECISIONS) or (None,),
        batch_sizes=_list(batch_sizes, "--batch-sizes", int) or (None,),
        gpus=_list(gpus, "--gpus", int),
        seq_len=seq_len,
        accumulation=accumulation,
        xla=xla,
        steps=steps,
        warmup=warmup,
        data=data,
        init=init,
        sets=tuple(sets or ()),
    )
    _check_outputs(markdown, json_out, out, {"--data": data, "--init": init})
    launch = LaunchOptions(None, launcher, hosts, hostfile, controller, False)
    outcome = sweep.run_train(
        sweep_spec, launch, guard=sweep.Guard(max_busy, max_wait), workdir=workdir,
        on_record=_recorder(out, compare),
    )  # fmt: skip
    from nvlm.bench.tables import train_grids

    _report(outcome, train_grids, markdown=markdown, json_out=json_out, compare=compare)


@app.command("infer")
def infer(
    model: ModelOption,
    task: Annotated[
        str | None,
        typer.Option(
            "--task",
            help="BERT, ELECTRA: squad | features | mlm (default squad); Transformer-XL: lm.",
        ),
    ] = None,
    preset: PresetOption = None,
    size: SizeOption = None,
    precision: PrecisionsOption = None,
    batch_sizes: BatchSizesOption = None,
    seq_len: SeqLenOption = None,
    mem_len: Annotated[
        int | None,
        typer.Option("--mem-len", min=0, help="Transformer-XL memory length (default 640)."),
    ] = None,
    xla: XlaOption = None,
    steps: Annotated[
        int, typer.Option("--steps", min=1, help="Timed batches per point (percentiles).")
    ] = 100,
    warmup: Annotated[
        int,
        typer.Option(
            "--warmup",
            min=0,
            help="Untimed batches first (compilation); at least each of the 8 distinct input "
            "batches once.",
        ),
    ] = 10,
    init: InitOption = None,
    sets: SetOption = None,
    max_busy: MaxBusyOption = 0.25,
    max_wait: MaxWaitOption = 120.0,
    compare: CompareFlag = False,
    markdown: MarkdownFlag = False,
    out: OutFileOption = None,
    json_out: JsonFlag = False,
) -> None:
    """Time inference of a model, one process, over precisions x batch sizes, and print one table per precision: throughput, latency average and 90/95/99th percentiles per batch (and per sequence), max, standard deviation.

    Examples:

        nvlm benchmark infer -m bert --size base --precision fp32,bf16

        nvlm benchmark infer -m transformer-xl --batch-sizes 1,8,16,32 --json
    """
    from nvlm.bench import infer_bench, sweep

    default_task = "lm" if model.strip().lower().replace("_", "-") == "transformer-xl" else "squad"
    sweep_spec = infer_bench.InferSweep(
        model=model,
        task=(task or default_task).strip().lower(),
        preset=preset,
        size=size,
        precisions=_list(precision, "--precision", str, PRECISIONS) or (None,),
        batch_sizes=_list(batch_sizes, "--batch-sizes", int),
        seq_len=seq_len,
        mem_len=mem_len,
        xla=xla,
        steps=steps,
        warmup=warmup,
        init=init,
        sets=tuple(sets or ()),
    )
    _check_outputs(markdown, json_out, out, {"--init": init})
    outcome = sweep.run_infer(
        sweep_spec, guard=sweep.Guard(max_busy, max_wait), on_record=_recorder(out, compare)
    )
    from nvlm.bench.tables import infer_grids

    _report(outcome, infer_grids, markdown=markdown, json_out=json_out, compare=compare)


@app.command("train-rank", hidden=True)
def train_rank(
    model: Annotated[str, typer.Option("--model")],
    task: Annotated[str, typer.Option("--task")],
    steps: Annotated[int, typer.Option("--steps")],
    warmup: Annotated[int, typer.Option("--warmup")],
    out: Annotated[Path, typer.Option("--out")],
    data: Annotated[Path | None, typer.Option("--data")] = None,
    init: Annotated[str | None, typer.Option("--init")] = None,
    config: ConfigFile = None,
) -> None:
    """One rank of a `nvlm benchmark train` point (started by it, with --config RUN/config.yaml)."""
    from nvlm import registry
    from nvlm.bench.train_bench import rank_job
    from nvlm.launch import ranks
    from nvlm.launch.training import LaunchOptions, TrainingJob, launch_or_run

    if not ranks.is_child():
        raise UserError("benchmark train-rank is started by nvlm benchmark train (run that)")
    plugin = registry.get(model)

    def no_resolve(gpus):
        raise UserError("a launched rank reads its config from --config")

    job = TrainingJob(
        command=[],
        run=out,
        resolve=no_resolve,
        train=rank_job(
            plugin, task=task, data=data, run=out, steps=steps, warmup=warmup, init=init
        ),  # fmt: skip
        config_file=config,
    )
    launch_or_run(job, LaunchOptions())
