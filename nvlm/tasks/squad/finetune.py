"""`nvlm finetune --task squad` below its options: the training job handed to the launcher (here,
under horovodrun/mpirun/srun, or as one of their ranks), then the optional evaluation on a dev
set by the process that reports.

    summary = finetune_squad(plugin, "bert", FinetuneRequest(Path("train-v1.1.json"),
                             "runs/bert-p2", Path("runs/squad")), LaunchOptions())
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nvlm.errors import UserError
from nvlm.launch.training import LaunchOptions, TrainingJob


@dataclass(frozen=True)
class FinetuneRequest:
    """What `nvlm finetune` asks for (None: the preset's setting)."""

    data: Path  # the official SQuAD training JSON
    init: str
    out: Path  # the run directory (created or resumed)
    version: str = "1.1"
    preset: str | None = None
    eval_data: Path | None = None  # the dev set evaluated after the last step
    epochs: float | None = None
    precision: str | None = None
    xla: bool | None = None
    beam_size: int | None = None
    sets: tuple[str, ...] = ()
    config: Path | None = None
    resume: bool = True
    overwrite: bool = False
    json_out: bool = False


def training_job(plugin, model: str, request: FinetuneRequest) -> TrainingJob:
    """The job `launch_training` runs: how to resolve the config for N processes, how to
    train, and the command line of each launched rank."""
    from nvlm.launch.training import child_command
    from nvlm.resolve import resolve_training_config
    from nvlm.tasks.squad.task import beam_size_flags
    from nvlm.train.run import train_run

    r = request

    def resolve(processes: int | None):
        flags = {
            "train.gpus": processes,
            "train.epochs": r.epochs,
            "train.precision": r.precision,
            "train.xla": r.xla,
            "data.squad_version": r.version,
            **beam_size_flags(plugin, r.beam_size),
        }
        return resolve_training_config(
            plugin,
            stage="squad",
            preset=r.preset,
            data=None,
            init=r.init,
            config_file=r.config,
            sets=list(r.sets),
            flags=flags,
        )

    def train(cfg, resume_run: bool, overwrite_run: bool) -> dict:
        return train_run(
            plugin,
            cfg,
            run=r.out,
            data=r.data,
            task="squad",
            init=r.init,
            resume=resume_run,
            overwrite=overwrite_run,
        )

    # What each launched rank runs (plus --config RUN/config.yaml), with absolute paths.
    child = child_command(
        "finetune",
        {"model": model, "task": "squad", "version": r.version},
        {"data": r.data, "init": r.init, "out": r.out},
    )
    inputs = {"--data": r.data, "--init": r.init, "--eval-data": r.eval_data}
    return TrainingJob(
        child, r.out, resolve, train, r.config, r.resume, r.overwrite, r.json_out, inputs
    )


def finetune_squad(plugin, model: str, request: FinetuneRequest, opts: LaunchOptions):
    """Fine-tune (launching the processes `opts` asks for), then evaluate on `eval_data`.
    Returns the summary (its "eval": the dev figures) in the process that reports, else None
    (a --dry-run, a rank other than rank 0)."""
    from nvlm.launch.training import launch_training
    from nvlm.tasks.squad.evaluation import run_squad_eval

    if request.version not in ("1.1", "2.0"):
        raise UserError(f"--version {request.version} is not a SQuAD version (use 1.1 or 2.0)")
    if not request.data.is_file():
        raise UserError(
            f"--data {request.data} does not exist (download it: nvlm data download squad "
            f"--version {request.version} --out DIR)"
        )
    outcome = launch_training(training_job(plugin, model, request), opts)
    if not outcome.reports:
        return None
    summary = outcome.summary
    if request.eval_data is not None:
        summary["eval"] = run_squad_eval(
            plugin,
            str(request.out),
            request.eval_data,
            out_dir=request.out / "eval",
            null_threshold=None,
            batch_size=None,
            beam_size=request.beam_size,
        )
    return summary
