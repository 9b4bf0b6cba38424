"""`nvlm benchmark train`: training throughput over a sweep (library: nvlm.bench.train_bench)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nvlm.cli.benchmark.options import (
    BatchSizesOption,
    BenchInitOption,
    BenchPresetOption,
    BenchSizeOption,
    BenchXlaOption,
    CompareFlag,
    MarkdownFlag,
    MaxBusyOption,
    MaxWaitOption,
    PrecisionsOption,
    RecordsOutOption,
    SeqLenOption,
)
from nvlm.cli.benchmark.output import check_outputs, report
from nvlm.cli.options import (
    ControllerOption,
    HostfileOption,
    HostsOption,
    JsonFlag,
    LauncherOption,
    ModelOption,
    SetOption,
)

# The longer declarations of this command's own options, so that its signature reads as a list.
AccumulationOption = Annotated[
    int | None,
    typer.Option(
        "--accumulation",
        min=1,
        help="Micro-batches per optimizer step (default: the preset's, re-derived for "
        "each process count so the global batch stays fixed).",
    ),
]
ProcessCountsOption = Annotated[
    str,
    typer.Option(
        "--gpus",
        help="Comma-separated process counts, one row each, e.g. 1,2,4,8 (CPU processes on "
        "a machine without GPUs), each launched as nvlm pretrain --gpus N launches.",
    ),
]
DataOption = Annotated[
    Path | None,
    typer.Option(
        "--data",
        help="Real data: shards (pretrain), a SQuAD JSON (squad) or a labelled JSONL/CSV/TSV "
        "file (classify), the last two with --init. Default: synthetic data of the real "
        "format and statistics.",
    ),
]
WorkdirOption = Annotated[
    Path | None,
    typer.Option(
        "--workdir",
        help="Where points keep their temporary files (removed at the end); on several "
        "nodes a directory every node sees. Default: the system's temporary directory.",
    ),
]


def train(
    model: ModelOption,
    task: Annotated[
        str,
        typer.Option(
            "--task",
            help="pretrain (BERT, ELECTRA, Transformer-XL) | squad | classify (BERT, ELECTRA: "
            "fine-tuning on text pairs, model.num_labels classes, default 2).",
        ),
    ] = "pretrain",
    phase: Annotated[
        int, typer.Option("--phase", min=1, max=2, help="Pretraining phase: 1 (seq 128), 2 (512).")
    ] = 1,
    preset: BenchPresetOption = None,
    size: BenchSizeOption = None,
    precision: PrecisionsOption = None,
    batch_sizes: BatchSizesOption = None,
    seq_len: SeqLenOption = None,
    accumulation: AccumulationOption = None,
    gpus: ProcessCountsOption = "1",
    xla: BenchXlaOption = None,
    steps: Annotated[
        int, typer.Option("--steps", min=1, help="Timed optimizer steps per point.")
    ] = 30,
    warmup: Annotated[
        int, typer.Option("--warmup", min=0, help="Untimed steps first (compilation included).")
    ] = 5,
    data: DataOption = None,
    init: BenchInitOption = None,
    sets: SetOption = None,
    launcher: LauncherOption = "auto",
    hosts: HostsOption = None,
    hostfile: HostfileOption = None,
    controller: ControllerOption = "auto",
    workdir: WorkdirOption = None,
    max_busy: MaxBusyOption = 0.25,
    max_wait: MaxWaitOption = 120.0,
    compare: CompareFlag = False,
    markdown: MarkdownFlag = False,
    out: RecordsOutOption = None,
    json_out: JsonFlag = False,
) -> None:
    r"""Time training steps (forward, backward, allreduce, optimizer) of a model over precisions x process counts x batch sizes, and print the published tables' layout: throughput per precision, speedup, weak scaling, then every point's step times, allreduce share, MFU and memory.

    Examples:

        nvlm benchmark train -m bert --size tiny --precision fp32,bf16 --gpus 1,2

        nvlm benchmark train -m electra --preset dgxa100-amp --gpus 1,8 --compare

        nvlm benchmark train -m bert --size base --task classify \
          --seq-len 128 --batch-sizes 8

        nvlm benchmark train -m transformer-xl --size base --markdown
    """
    from nvlm.bench import axes, sweep, train_bench
    from nvlm.bench.recording import recorder
    from nvlm.bench.tables import train_grids
    from nvlm.launch.training import LaunchOptions

    sweep_spec = train_bench.TrainSweep(
        model=model, task=task.strip().lower(), phase=phase, preset=preset, size=size,
        precisions=axes.precisions(precision),
        batch_sizes=axes.whole_numbers(batch_sizes, "--batch-sizes") or (None,),
        gpus=axes.whole_numbers(gpus, "--gpus"), seq_len=seq_len, accumulation=accumulation,
        xla=xla, steps=steps, warmup=warmup, data=data, init=init, sets=tuple(sets or ()),
    )  # fmt: skip
    check_outputs(markdown, json_out, out, {"--data": data, "--init": init})
    launch = LaunchOptions(None, launcher, hosts, hostfile, controller, False)
    outcome = sweep.run_train(
        sweep_spec, launch, guard=sweep.Guard(max_busy, max_wait), workdir=workdir,
        on_record=recorder(out, compare),
    )  # fmt: skip
    report(outcome, train_grids, markdown=markdown, json_out=json_out, compare=compare)
