"""`nvlm benchmark train-rank` (hidden): one launched rank of a `nvlm benchmark train` point."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nvlm.cli.options import ConfigFile
from nvlm.errors import UserError


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
