"""`nvlm finetune`: fine-tune a pretrained encoder on a downstream task (SQuAD)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nvlm.cli.options import (
    BeamSizeOption,
    ConfigFile,
    ControllerOption,
    DataOption,
    DryRunFlag,
    GpusOption,
    HostfileOption,
    HostsOption,
    InitOption,
    JsonFlag,
    LauncherOption,
    OptionalModelOption,
    OverwriteFlag,
    PrecisionOption,
    PresetOption,
    ResumeFlag,
    RunDir,
    SetOption,
    SquadVersionOption,
    XlaOption,
)
from nvlm.errors import UserError

TaskOption = Annotated[str, typer.Option("--task", help="squad")]
EvalData = Annotated[
    Path | None,
    typer.Option("--eval-data", help="Dev set to evaluate at the end (train_eval)."),
]
Epochs = Annotated[
    float | None,
    typer.Option(
        "--epochs",
        min=0.0,
        help="Epochs over the training features (overrides the preset).",
    ),
]


def finetune(
    data: DataOption,
    init: InitOption,
    out: RunDir,
    model: OptionalModelOption = None,
    task: TaskOption = "squad",
    version: SquadVersionOption = None,
    preset: PresetOption = None,
    eval_data: EvalData = None,
    epochs: Epochs = None,
    gpus: GpusOption = None,
    launcher: LauncherOption = "auto",
    hosts: HostsOption = None,
    hostfile: HostfileOption = None,
    controller: ControllerOption = "auto",
    dry_run: DryRunFlag = False,
    precision: PrecisionOption = None,
    xla: XlaOption = None,
    beam_size: BeamSizeOption = None,
    sets: SetOption = None,
    config: ConfigFile = None,
    resume: ResumeFlag = True,
    overwrite: OverwriteFlag = False,
    json_out: JsonFlag = False,
) -> None:
    r"""Fine-tune for SQuAD question answering (v1.1 or v2.0).

    --version: read from --data when absent. --model: default, what --init is. data.doc_stride: when you set none and the preset's (or 128) does not fit data.seq_len, one that fits is derived, with a note.

    Examples:

        nvlm finetune --model bert --task squad --version 1.1 \
          --data train-v1.1.json --init runs/bert-p2 --out runs/squad \
          --preset dgxa100-amp

        nvlm finetune --model bert --task squad --data train.json \
          --init hf/bert-base-uncased --out runs/squad --preset cpu-bf16 \
          --eval-data dev.json

        nvlm finetune --model bert --task squad --data train.json \
          --init runs/bert-p2 --out runs/squad --preset dgx1-16g-amp \
          --gpus 2 --dry-run

    Re-running the same command on the same --out resumes. More than one process: docs/distributed.md.
    """
    from nvlm import registry
    from nvlm.launch.training import LaunchOptions
    from nvlm.tasks.inference import model_of_init
    from nvlm.tasks.squad.finetune import FinetuneRequest, finetune_squad

    model = model_of_init(init, model)
    plugin = registry.get(model)
    if task != "squad" or "squad" not in plugin.tasks:
        raise UserError(f"model {model} cannot be fine-tuned for {task!r} (use --task squad)")
    request = FinetuneRequest(
        data,
        init,
        out,
        version=version,
        preset=preset,
        eval_data=eval_data,
        epochs=epochs,
        precision=precision,
        xla=xla,
        beam_size=beam_size,
        sets=tuple(sets or ()),
        config=config,
        resume=resume,
        overwrite=overwrite,
        json_out=json_out,
    )
    opts = LaunchOptions(gpus, launcher, hosts, hostfile, controller, dry_run)
    summary = finetune_squad(plugin, model, request, opts)
    if summary is not None:  # None: a --dry-run, or a rank other than the one that reports
        _report(model, summary, json_out)


def _report(model: str, summary: dict, json_out: bool) -> None:
    """The dev-set table (with --eval-data) and the --json summary."""
    from nvlm.report import emit_json, print_table, summary_table
    from nvlm.tasks.squad.evaluation import squad_table_rows

    if "eval" in summary:
        title = f"nvlm eval {model} squad {summary['eval']['version']}"
        print_table(summary_table(title, squad_table_rows(summary["eval"])))
    if json_out:
        emit_json(summary)
