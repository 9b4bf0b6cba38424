"""`nvlm finetune`: fine-tune a pretrained encoder on a downstream task (SQuAD)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nvlm.cli.options import (
    ConfigFile,
    ControllerOption,
    DryRunFlag,
    GpusOption,
    HostfileOption,
    HostsOption,
    JsonFlag,
    LauncherOption,
    SetOption,
)
from nvlm.errors import UserError


def finetune(
    model: Annotated[str, typer.Option("--model", "-m", help="bert | electra")],
    data: Annotated[Path, typer.Option("--data", help="Training set: the official SQuAD JSON.")],
    init: Annotated[
        str,
        typer.Option(
            "--init",
            help="Pretrained model: an nvlm run or checkpoint, a Hugging Face directory or a Google checkpoint.",
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Run directory (created or resumed).")],
    task: Annotated[str, typer.Option("--task", help="squad")] = "squad",
    version: Annotated[
        str,
        typer.Option("--version", help="SQuAD version: 1.1, or 2.0 (with unanswerable questions)."),
    ] = "1.1",
    preset: Annotated[
        str | None,
        typer.Option("--preset", help="Hardware preset (nvlm presets list) or a YAML path."),
    ] = None,
    eval_data: Annotated[
        Path | None,
        typer.Option("--eval-data", help="Dev set to evaluate at the end (train_eval)."),
    ] = None,
    epochs: Annotated[
        float | None,
        typer.Option(
            "--epochs", min=0.0, help="Epochs over the training features (overrides the preset)."
        ),
    ] = None,
    gpus: GpusOption = None,
    launcher: LauncherOption = "auto",
    hosts: HostsOption = None,
    hostfile: HostfileOption = None,
    controller: ControllerOption = "auto",
    dry_run: DryRunFlag = False,
    precision: Annotated[
        str | None, typer.Option("--precision", help="fp32 | tf32 | amp | bf16")
    ] = None,
    xla: Annotated[
        bool | None, typer.Option("--xla/--no-xla", help="XLA-compile the forward/backward step.")
    ] = None,
    beam_size: Annotated[
        int | None,
        typer.Option(
            "--beam-size",
            help="squad, joint answer heads (electra): start and end positions kept (default 4).",
        ),
    ] = None,
    sets: SetOption = None,
    config: ConfigFile = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume/--no-resume", help="Resume from RUN's latest checkpoint when there is one."
        ),
    ] = True,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Delete RUN first and start over.")
    ] = False,
    json_out: JsonFlag = False,
) -> None:
    r"""Fine-tune for SQuAD question answering (v1.1 or v2.0).

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
    from nvlm.launch.training import LaunchOptions, TrainingJob, child_command, launch_training
    from nvlm.report import emit_json, print_table, summary_table
    from nvlm.resolve import resolve_training_config
    from nvlm.tasks.squad.task import beam_size_flags
    from nvlm.train.run import train_run

    plugin = registry.get(model)
    if task != "squad" or "squad" not in plugin.tasks:
        raise UserError(f"model {model} cannot be fine-tuned for {task!r} (use --task squad)")
    if version not in ("1.1", "2.0"):
        raise UserError(f"--version {version} is not a SQuAD version (use 1.1 or 2.0)")
    if not data.is_file():
        raise UserError(
            f"--data {data} does not exist (download it: nvlm data download squad --version {version} --out DIR)"
        )

    def resolve(processes: int | None):
        return resolve_training_config(
            plugin,
            stage="squad",
            preset=preset,
            data=None,
            init=init,
            config_file=config,
            sets=sets or [],
            flags={
                "train.gpus": processes,
                "train.epochs": epochs,
                "train.precision": precision,
                "train.xla": xla,
                "data.squad_version": version,
                **beam_size_flags(plugin, beam_size),
            },
        )

    def train(cfg, resume_run: bool, overwrite_run: bool) -> dict:
        return train_run(
            plugin,
            cfg,
            run=out,
            data=data,
            task="squad",
            init=init,
            resume=resume_run,
            overwrite=overwrite_run,
        )

    # What each launched rank runs (plus --config RUN/config.yaml), with absolute paths.
    child = child_command(
        "finetune",
        {"model": model, "task": task, "version": version},
        {"data": data, "init": init, "out": out},
    )
    inputs = {"--data": data, "--init": init, "--eval-data": eval_data}
    job = TrainingJob(child, out, resolve, train, config, resume, overwrite, json_out, inputs)
    opts = LaunchOptions(gpus, launcher, hosts, hostfile, controller, dry_run)
    outcome = launch_training(job, opts)
    if not outcome.reports:
        return  # a --dry-run, or a rank other than the one that reports
    summary = outcome.summary
    if eval_data is not None:
        from nvlm.cli.eval import run_squad_eval, squad_table_rows

        summary["eval"] = run_squad_eval(
            plugin,
            str(out),
            eval_data,
            out_dir=out / "eval",
            null_threshold=None,
            batch_size=None,
            beam_size=beam_size,
        )
        print_table(
            summary_table(f"nvlm eval {model} squad {version}", squad_table_rows(summary["eval"]))
        )
    if json_out:
        emit_json(summary)
