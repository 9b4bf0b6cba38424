"""`nvlm finetune`: fine-tune a pretrained encoder on a downstream task (SQuAD, classify)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nvlm.cli.classify_options import (
    EvalEachEpochFlag,
    GlueOption,
    LabelFieldOption,
    LabelsOption,
    PairFieldOption,
    RegressionFlag,
    TextFieldOption,
)
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

TaskOption = Annotated[
    str, typer.Option("--task", help="squad | classify (sequence classification or regression)")
]
EvalData = Annotated[
    Path | None,
    typer.Option(
        "--eval-data",
        help="Dev set evaluated after the last step; with --eval-each-epoch or --set "
        "train.eval_every=N also while training (eval_* figures in metrics.jsonl).",
    ),
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
    glue: GlueOption = None,
    labels: LabelsOption = None,
    regression: RegressionFlag = False,
    text_field: TextFieldOption = None,
    pair_field: PairFieldOption = None,
    label_field: LabelFieldOption = None,
    eval_each_epoch: EvalEachEpochFlag = False,
    sets: SetOption = None,
    config: ConfigFile = None,
    resume: ResumeFlag = True,
    overwrite: OverwriteFlag = False,
    json_out: JsonFlag = False,
) -> None:
    r"""Fine-tune for SQuAD question answering (v1.1 or v2.0) or sequence classification/regression.

    squad: --version read from --data when absent; data.doc_stride derived to fit data.seq_len when unset (with a note). classify: --data is a labelled JSONL/CSV/TSV (fields text, text_pair, label; rename with --text-field/--pair-field/--label-field) or with --glue TASK the task's directory or train.tsv; the label set (training file, --labels or GLUE's) is saved in RUN/config.yaml (docs/classification.md). --model: default, what --init is.

    Examples:

        nvlm finetune --model bert --task squad --version 1.1 \
          --data train-v1.1.json --init runs/bert-p2 --out runs/squad \
          --preset dgxa100-amp

        nvlm finetune --task classify --glue sst2 --data glue_data/SST-2 \
          --eval-data glue_data/SST-2 --init hf/electra-base --out runs/sst2

        nvlm finetune --task classify --data reviews.csv --labels neg,pos \
          --init runs/bert-p2 --out runs/reviews --preset cpu-bf16

    Re-running the same command on the same --out resumes. More than one process: docs/distributed.md.
    """
    from nvlm import registry
    from nvlm.launch.training import LaunchOptions
    from nvlm.tasks.inference import model_of_init

    model = model_of_init(init, model)
    plugin = registry.get(model)
    if task not in ("squad", "classify") or task not in plugin.tasks:
        tasks = "|".join(t for t in ("squad", "classify") if t in plugin.tasks)
        raise UserError(f"model {model} cannot be fine-tuned for {task!r} (use --task {tasks})")
    opts = LaunchOptions(gpus, launcher, hosts, hostfile, controller, dry_run)
    common = dict(preset=preset, eval_data=eval_data, epochs=epochs, precision=precision,
                  xla=xla, sets=tuple(sets or ()), config=config, resume=resume,
                  overwrite=overwrite, json_out=json_out)  # fmt: skip
    if task == "classify":
        if version is not None or beam_size is not None:
            raise UserError("--version and --beam-size apply to --task squad (drop them)")
        classify = dict(glue=glue, labels=labels, regression=regression,
                        eval_each_epoch=eval_each_epoch)  # fmt: skip
        fields = (text_field, pair_field, label_field)
        summary = _classify(plugin, model, (data, init, out), classify, fields, common, opts)
    else:
        from nvlm.tasks.squad.finetune import FinetuneRequest, finetune_squad

        request = FinetuneRequest(data, init, out, version=version, beam_size=beam_size,
                                  eval_each_epoch=eval_each_epoch, **common)  # fmt: skip
        summary = finetune_squad(plugin, model, request, opts)
    if summary is not None:  # None: a --dry-run, or a rank other than the one that reports
        _report(model, task, summary, json_out)


def _classify(plugin, model: str, paths, classify: dict, fields, common: dict, opts):
    """`--task classify`: the request of the options, fine-tuned (and evaluated)."""
    from nvlm.tasks.classify.evaluation import DataFields
    from nvlm.tasks.classify.finetune import ClassifyRequest, finetune_classify

    request = ClassifyRequest(*paths, fields=DataFields(*fields), **classify, **common)
    return finetune_classify(plugin, model, request, opts)


def _report(model: str, task: str, summary: dict, json_out: bool) -> None:
    """The dev-set table (with --eval-data) and the --json summary."""
    from nvlm.report import emit_json, print_table, summary_table
    from nvlm.tasks.classify.evaluation import classify_table_rows
    from nvlm.tasks.squad.evaluation import squad_table_rows

    if "eval" in summary and task == "classify":
        title = f"nvlm eval {model} classify {summary['eval']['glue_task'] or ''}".rstrip()
        print_table(summary_table(title, classify_table_rows(summary["eval"])))
    elif "eval" in summary:
        title = f"nvlm eval {model} squad {summary['eval']['version']}"
        print_table(summary_table(title, squad_table_rows(summary["eval"])))
    if json_out:
        emit_json(summary)
