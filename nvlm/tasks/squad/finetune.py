"""`nvlm finetune --task squad` below its options: the training job handed to the launcher (here,
under horovodrun/mpirun/srun, or as one of their ranks), then the optional evaluation on a dev
set by the process that reports.

    summary = finetune_squad(plugin, "bert", FinetuneRequest(Path("train-v1.1.json"),
                             "runs/bert-p2", Path("runs/squad")), LaunchOptions())
"""

from __future__ import annotations

import dataclasses
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
    version: str | None = None  # None: the version of the `data` file
    preset: str | None = None
    eval_data: Path | None = None  # the dev set evaluated after the last step
    eval_each_epoch: bool = False  # also evaluate eval_data after each epoch (in the loop)
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
            "train.eval_each_epoch": True if r.eval_each_epoch else None,
            # Where every rank (rank 0 evaluates) finds the dev set while training.
            "data.eval_data": str(Path(r.eval_data).resolve()) if r.eval_data else None,
            **beam_size_flags(plugin, r.beam_size),
        }
        stride, note = fitting_stride(plugin, r, flags)
        if stride is not None:
            flags["data.doc_stride"] = stride
        cfg, notes = resolve_training_config(
            plugin,
            stage="squad",
            preset=r.preset,
            data=None,
            init=r.init,
            config_file=r.config,
            sets=list(r.sets),
            flags=flags,
        )
        if (cfg.train.eval_every or cfg.train.eval_each_epoch) and cfg.data.eval_data is None:
            raise UserError(
                "--eval-each-epoch / train.eval_every evaluate a dev set while training: "
                "pass --eval-data DEV"
            )
        return cfg, notes + ([note] if note else [])

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


def fitting_stride(plugin, request: FinetuneRequest, flags: dict) -> tuple[int | None, str | None]:
    """(data.doc_stride, note) when the user set no stride (--set, --config) and the preset's
    or the default one (128) is longer than the document window that data.seq_len leaves after
    the query: half that window, so that an answer of up to half a window is whole in at least
    one window. (None, None) when the stride needs no change."""
    from nvlm import config as config_mod
    from nvlm import presets
    from nvlm.resolve import resolve_training_config

    r = request
    user = set(config_mod.parse_sets(r.sets))
    if r.config is not None:
        tree = config_mod.read_yaml(r.config, "config file")
        tree = {k: v for k, v in tree.items() if k not in config_mod.META_KEYS}
        user |= set(config_mod.flatten(tree, str(r.config)))
    if "data.doc_stride" in user:
        return None, None  # the user's: a stride that does not fit stays an error
    stride, source = config_mod.DataConfig().doc_stride, "default"
    if r.preset is not None:
        layer = presets.layer_for(r.preset, plugin.name, "squad", gpus=None, overridden=())
        if "data.doc_stride" in layer.values:
            stride, source = layer.values["data.doc_stride"], "preset's"
    # The other settings as the run will have them (a stride of 1 always fits a window).
    probe, _ = resolve_training_config(
        plugin, stage="squad", preset=r.preset, data=None, init=r.init, config_file=r.config,
        sets=list(r.sets), flags={**flags, "data.doc_stride": 1},
    )  # fmt: skip
    d = probe.data
    window = d.seq_len - d.max_query_len - 3  # [CLS] query [SEP] document [SEP]
    if stride <= window:
        return None, None
    fitted = max(1, window // 2)
    return fitted, (
        f"data.doc_stride={fitted}: the {source} {stride} does not fit the {window} document "
        f"tokens of data.seq_len={d.seq_len} after a {d.max_query_len}-token query (set "
        "data.doc_stride to choose another)"
    )


def squad_version(request: FinetuneRequest) -> str:
    """--version, or the version of the training file (as `nvlm eval` detects it). The file
    is read and checked here, before any run directory exists: a bad record, or a v2.0 file
    with --version 1.1, is refused with nothing written."""
    from nvlm.tasks.squad import read_squad

    if request.version is not None and request.version not in ("1.1", "2.0"):
        raise UserError(f"--version {request.version} is not a SQuAD version (use 1.1 or 2.0)")
    if not request.data.is_file():
        hint = f" --version {request.version}" if request.version else ""
        raise UserError(
            f"--data {request.data} does not exist (download it: nvlm data download squad"
            f"{hint} --out DIR)"
        )
    return read_squad(request.data, request.version).version


def finetune_squad(plugin, model: str, request: FinetuneRequest, opts: LaunchOptions):
    """Fine-tune (launching the processes `opts` asks for), then evaluate on `eval_data`.
    Returns the summary (its "eval": the dev figures) in the process that reports, else None
    (a --dry-run, a rank other than rank 0)."""
    from nvlm.launch.training import launch_training
    from nvlm.tasks.squad.evaluation import run_squad_eval

    request = dataclasses.replace(request, version=squad_version(request))
    if request.eval_data is not None and not request.eval_data.is_file():
        raise UserError(f"--eval-data {request.eval_data} does not exist (pass the dev JSON)")
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
