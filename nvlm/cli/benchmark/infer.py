"""`nvlm benchmark infer`: inference throughput and latency (library: nvlm.bench.infer_bench)."""

from __future__ import annotations

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
from nvlm.cli.options import JsonFlag, ModelOption, SetOption


def infer(
    model: ModelOption,
    task: Annotated[
        str | None,
        typer.Option(
            "--task",
            help="BERT, ELECTRA: squad | classify | features | mlm (default squad); "
            "Transformer-XL: lm. classify: text pairs, model.num_labels classes (default 2).",
        ),
    ] = None,
    preset: BenchPresetOption = None,
    size: BenchSizeOption = None,
    precision: PrecisionsOption = None,
    batch_sizes: BatchSizesOption = None,
    seq_len: SeqLenOption = None,
    mem_len: Annotated[
        int | None,
        typer.Option("--mem-len", min=0, help="Transformer-XL memory length (default 640)."),
    ] = None,
    xla: BenchXlaOption = None,
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
    init: BenchInitOption = None,
    sets: SetOption = None,
    max_busy: MaxBusyOption = 0.25,
    max_wait: MaxWaitOption = 120.0,
    compare: CompareFlag = False,
    markdown: MarkdownFlag = False,
    out: RecordsOutOption = None,
    json_out: JsonFlag = False,
) -> None:
    """Time inference of a model, one process, over precisions x batch sizes, and print one table per precision: throughput, latency average and 90/95/99th percentiles per batch (and per sequence), max, standard deviation.

    Examples:

        nvlm benchmark infer -m bert --size base --precision fp32,bf16

        nvlm benchmark infer -m electra --size base --task classify --batch-sizes 1,8

        nvlm benchmark infer -m transformer-xl --batch-sizes 1,8,16,32 --json
    """
    from nvlm.bench import axes, infer_bench, sweep
    from nvlm.bench.recording import recorder
    from nvlm.bench.tables import infer_grids

    default_task = "lm" if model.strip().lower().replace("_", "-") == "transformer-xl" else "squad"
    sweep_spec = infer_bench.InferSweep(
        model=model, task=(task or default_task).strip().lower(), preset=preset, size=size,
        precisions=axes.precisions(precision),
        batch_sizes=axes.whole_numbers(batch_sizes, "--batch-sizes"), seq_len=seq_len,
        mem_len=mem_len, xla=xla, steps=steps, warmup=warmup, init=init, sets=tuple(sets or ()),
    )  # fmt: skip
    check_outputs(markdown, json_out, out, {"--init": init})
    outcome = sweep.run_infer(
        sweep_spec, guard=sweep.Guard(max_busy, max_wait), on_record=recorder(out, compare)
    )
    report(outcome, infer_grids, markdown=markdown, json_out=json_out, compare=compare)
