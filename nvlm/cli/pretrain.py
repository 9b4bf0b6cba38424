"""`nvlm pretrain`: pretrain a model on shards made by `nvlm data pretraining`."""

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
    InitOption,
    JsonFlag,
    LauncherOption,
    ModelOption,
    OverwriteFlag,
    PrecisionOption,
    PresetOption,
    ResumeFlag,
    RunDir,
    SetOption,
    XlaOption,
)
from nvlm.errors import UserError

EXAMPLES = r"""
Examples:

    nvlm pretrain --model bert --preset cpu-bf16 --data shards/ \
      --out runs/bert-p1 --set model.size=tiny

    nvlm pretrain --model bert --preset dgxa100-amp --phase 2 \
      --data shards512/ --init runs/bert-p1 --out runs/bert-p2

    nvlm pretrain --model bert --preset dgx1-16g-amp --data shards/ \
      --out runs/bert-p1 --hosts node1:8,node2:8 --dry-run

    nvlm pretrain --model transformer-xl --preset cpu-fp32 --data wt2/ \
      --out runs/txl --set train.eval_every=100

Re-running the same command on the same --out resumes from its latest checkpoint (with any --gpus: the data position is global). More than one process: see docs/distributed.md.
"""


PretrainData = Annotated[
    Path,
    typer.Option(
        "--data", help="Shard directory (nvlm data pretraining); transformer-xl: nvlm data lm."
    ),
]
PhaseOption = Annotated[
    int,
    typer.Option(
        "--phase", min=1, max=2, help="Pretraining phase: 1 (seq 128) or 2 (seq 512, from --init)."
    ),
]
StepsOption = Annotated[
    int | None, typer.Option("--steps", min=1, help="Optimizer steps (overrides the preset).")
]


HeldOut = Annotated[
    Path | None,
    typer.Option(
        "--eval-data",
        help="bert, electra: held-out shards; transformer-xl: an nvlm data lm directory "
        "whose valid split is evaluated (default with train.eval_every: --data's). Evaluated "
        "after the last step and every train.eval_every steps (eval_* figures in "
        "metrics.jsonl and TensorBoard); --set train.keep_best=METRIC keeps the best "
        "checkpoint in RUN/best.",
    ),
]


def pretrain(
    model: ModelOption,
    data: PretrainData,
    out: RunDir,
    preset: PresetOption = None,
    phase: PhaseOption = 1,
    init: InitOption = None,
    gpus: GpusOption = None,
    launcher: LauncherOption = "auto",
    hosts: HostsOption = None,
    hostfile: HostfileOption = None,
    controller: ControllerOption = "auto",
    dry_run: DryRunFlag = False,
    steps: StepsOption = None,
    eval_data: HeldOut = None,
    precision: PrecisionOption = None,
    xla: XlaOption = None,
    sets: SetOption = None,
    config: ConfigFile = None,
    resume: ResumeFlag = True,
    overwrite: OverwriteFlag = False,
    json_out: JsonFlag = False,
) -> None:
    """Pretrain BERT (MLM + NSP) or ELECTRA (replaced-token detection) on HDF5 shards, or train a Transformer-XL language model on an `nvlm data lm` directory."""
    from nvlm import registry
    from nvlm.launch.training import LaunchOptions, TrainingJob, child_command, launch_training
    from nvlm.report import emit_json
    from nvlm.resolve import resolve_training_config
    from nvlm.train.run import train_run

    plugin = registry.get(model)
    stage = _stage(plugin, model, phase, init)

    held_out = _held_out(plugin, model, eval_data)

    def resolve(processes: int | None):
        cfg, notes = resolve_training_config(
            plugin,
            stage=stage,
            preset=preset,
            data=data,
            init=init,
            config_file=config,
            sets=sets or [],
            flags={
                "train.gpus": processes,
                "train.steps": steps,
                "train.precision": precision,
                "train.xla": xla,
                "data.eval_data": held_out,
            },
        )
        # A language model evaluates --data's own valid split by default (its plugin says so).
        lm = plugin.provides("language_model")
        if cfg.train.eval_every and cfg.data.eval_data is None and not lm:
            raise UserError("train.eval_every evaluates held-out shards: pass --eval-data SHARDS")
        return cfg, notes

    def train(cfg, resume_run: bool, overwrite_run: bool) -> dict:
        return train_run(plugin, cfg, run=out, data=data, task="pretrain", init=init,
                         resume=resume_run, overwrite=overwrite_run)  # fmt: skip

    # What each launched rank runs (plus --config RUN/config.yaml): absolute paths, since a
    # rank on another node may start in another directory.
    child = child_command(
        "pretrain",
        {"model": model, "phase": str(phase)},
        {"data": data, "out": out, "init": init},
    )
    inputs = {"--data": data, "--init": init, "--eval-data": eval_data}
    job = TrainingJob(child, out, resolve, train, config, resume, overwrite, json_out, inputs)
    opts = LaunchOptions(gpus, launcher, hosts, hostfile, controller, dry_run)
    outcome = launch_training(job, opts)
    if json_out and outcome.reports:
        emit_json(outcome.summary)


def _held_out(plugin, model: str, eval_data: Path | None) -> str | None:
    """--eval-data as the absolute path every launched rank reads (config data.eval_data),
    once it is data of this model's kind, shards or an LM directory (checked before a run
    directory exists)."""
    if eval_data is None:
        return None
    if plugin.shard_kind is None and not plugin.provides("language_model"):
        raise UserError(f"--eval-data applies to models that pretrain on shards, not {model}")
    plugin.data_overrides(eval_data)  # a one-line error for what is not its kind of data
    return str(eval_data.resolve())


def _stage(plugin, model: str, phase: int, init: str | None) -> str:
    """The preset stage of `--phase` (a plugin without phases names its own: Transformer-XL's
    "train"), once the model can pretrain and phase 2 has its phase-1 run."""
    if "pretrain" not in plugin.tasks:
        raise UserError(
            f"model {model} has no pretraining task (use: nvlm pretrain --model bert|electra)"
        )
    stage = plugin.pretrain_stage(phase)
    if phase == 2 and not init and plugin.train_stage is None:
        raise UserError(
            "--phase 2 starts from a phase-1 checkpoint: pass --init RUN_OF_PHASE_1 "
            "(as the reference recipe does, with a fresh optimizer and step counter)"
        )
    return stage


pretrain.__doc__ = (pretrain.__doc__ or "") + "\n" + EXAMPLES
