"""One training run of any model plugin: precision and seeds, build, `--init`, train, summary.

The CLI resolves the config and calls `train_run`; the launcher's child processes call the same
function with the config they read from RUN/config.yaml.
"""

from __future__ import annotations

import json
import shutil
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import keras

from nvlm import config as config_mod
from nvlm import run_dir as run_dir_mod
from nvlm.dist import world as get_world
from nvlm.errors import UserError
from nvlm.launch.ranks import is_child
from nvlm.outputs import atomic_path, write_text
from nvlm.report import info, log_to, print_table, summary_table
from nvlm.run_dir import CONFIG, LOGS, SUMMARY
from nvlm.train.precision import set_precision
from nvlm.train.trainer import Trainer, TrainResult


def peak_flops(cfg) -> float | None:
    """Dense peak FLOP/s of the devices this run uses, as measured on this machine
    (`nvlm benchmark peak`, cached): never a nominal figure, so an MFU stays <= 100%."""
    from nvlm.train.peak import peak_flops as measured

    try:
        return measured(cfg.train.precision, cfg.train.gpus)
    except Exception as exc:  # noqa: BLE001 - MFU is a figure of the summary, not the run
        info(f"[yellow]note:[/yellow] MFU not reported: the peak could not be measured ({exc})")
        return None


def train_run(
    plugin,
    cfg,
    *,
    run: Path,
    data: Path,
    task: str,
    init: str | None = None,
    resume: bool = True,
    overwrite: bool = False,
    show_progress: bool = True,
    stop_after: int | None = None,
) -> dict[str, Any]:
    """Train `task` of `plugin` into `run`; return the summary (also written to RUN/summary.json)."""
    world = get_world()
    if world.size != cfg.train.gpus:
        # The global batch and a per-GPU lr were derived for train.gpus processes.
        raise UserError(
            f"this run resolves to {cfg.train.gpus} processes (train.gpus) but runs in "
            f"{world.size}: pass --gpus {world.size}, or let nvlm start the processes"
        )
    run = Path(run)
    owner = world.is_root and not is_child()  # a launched job's parent holds the lock
    inputs = {"--data": data, "--init": init}
    with run_dir_mod.locked(run, inputs) if owner else nullcontext():
        resuming = False
        if world.is_root:
            # Before the log opens: --overwrite clears the old run's logs, not this one's.
            resuming = run_dir_mod.prepare(
                run, config_mod.to_dict(cfg), resume=resume, overwrite=overwrite, inputs=inputs
            )
        try:
            with log_to(run / LOGS / "run.log") if owner else nullcontext():
                return _train_locked(
                    plugin, cfg, world, run=run, data=data, task=task, init=init,
                    resuming=resuming, show_progress=show_progress, stop_after=stop_after,
                )  # fmt: skip
        except UserError:
            if owner and not resuming and not run_dir_mod.has_checkpoint(run):
                # Refused once the model and data were read (train.keep_best naming a figure
                # the run does not evaluate, a held-out set without its split): take back what
                # this command wrote, so that bad input leaves nothing half-written.
                run_dir_mod.clear(run)
            raise


def _train_locked(
    plugin, cfg, world, *, run, data, task, init, resuming, show_progress, stop_after
) -> dict[str, Any]:
    if world.is_root:
        _write_config(cfg, run)
    world.barrier()

    set_precision(cfg.train.precision)
    keras.utils.set_random_seed(cfg.train.seed)
    model = plugin.build(cfg, task)
    if init and not resuming:
        for line in plugin.load_init(model, cfg, init, task):
            info(f"[yellow]init:[/yellow] {line}")
    spec = plugin.train_spec(cfg, model, data, task, world, run=run, init=init)
    if world.is_root and not resuming:
        plugin.write_assets(cfg, run, data, init, task)

    trainer = Trainer(
        spec,
        cfg.train,
        run,
        world=world,
        peak_flops=peak_flops(cfg) if world.is_root else None,
        show_progress=show_progress,
        stop_after=stop_after,
    )
    result = trainer.fit()
    if result.already_complete:
        summary = _already_complete(cfg, task, result, run)
        if world.is_root:
            print_summary(summary)
        return summary
    summary = _summary(cfg, task, result, run, trainer)
    if world.is_root and result.steps == trainer.total_steps:
        # e.g. ELECTRA exports RUN/hf at the end
        for line in plugin.finish_run(cfg, model, run, task):
            info(f"[yellow]export:[/yellow] {line}")
    if world.is_root:
        _write_json(run / SUMMARY, summary)
        print_summary(summary)  # in RUN/logs/run.log too
    return summary


def _write_config(cfg, run: Path) -> None:
    """RUN/config.yaml, rewritten only when its text changes (a finished run's rerun changes
    nothing)."""
    path = run / CONFIG
    try:
        if path.read_text(encoding="utf-8") == config_mod.dump(cfg):
            return
    except OSError:
        pass
    config_mod.write(cfg, run)


def _already_complete(cfg, task: str, r: TrainResult, run: Path) -> dict[str, Any]:
    """The saved summary of a run that had reached its last step (nothing was trained)."""
    try:
        saved = json.loads((run / SUMMARY).read_text())
    except (OSError, ValueError):
        saved = _summary(cfg, task, r, run, None)
    saved["already_complete"] = True
    saved["interrupted"] = False
    info(
        f"{run} is already complete at step {r.steps} (checkpoint {Path(r.checkpoint).name}); "
        "nothing to do. The figures below are those it saved when it finished"
    )
    return saved


def _summary(cfg, task: str, r: TrainResult, run: Path, trainer) -> dict[str, Any]:
    t = cfg.train
    interrupted = bool(trainer and trainer.interrupted)
    return {
        "model": cfg.model_name,
        "task": task,
        "stage": cfg.stage,
        "run": str(run),
        "steps": r.steps,
        "total_steps": trainer.total_steps if trainer else r.steps,
        "resumed_from_step": r.resumed_from,
        "steps_this_invocation": r.steps - r.resumed_from,
        "interrupted": interrupted,
        "signal": r.signal if interrupted else None,
        "global_batch": cfg.global_batch,
        "processes": t.gpus,
        "precision": t.precision,
        "xla": t.xla,
        "total_time_s": round(r.total_time_s, 3),
        "time_without_startup_s": round(r.measured_time_s, 3),
        "sequences_processed": r.examples,
        "throughput_seq_per_s": round(r.sequences_per_s, 3),
        "throughput_tok_per_s": round(r.tokens_per_s, 1),
        "throughput_seq_per_s_per_process": round(r.sequences_per_s / t.gpus, 3),
        "mfu": None if r.mfu is None else round(r.mfu, 4),
        "skipped_steps": r.skipped_steps,
        "final": {k: round(v, 6) for k, v in r.final_metrics.items()},
        "checkpoint": r.checkpoint,
        **_held_out(trainer),
    }


def _held_out(trainer) -> dict[str, Any]:
    """The latest held-out figures and the best checkpoint (train.keep_best), when the run
    evaluated while it trained (rank 0)."""
    out: dict[str, Any] = {}
    if trainer is not None and trainer.last_eval:
        out["held_out"] = {k: round(v, 6) for k, v in trainer.last_eval.items()}
    best = getattr(trainer, "best", None)
    if best is not None and best.step is not None:
        out["best"] = {"path": str(best.path), "metric": best.metric, "value": best.value,
                       "step": best.step}  # fmt: skip
    return out


def print_summary(summary: dict[str, Any]) -> None:
    resumed = summary.get("resumed_from_step", 0)
    whole = "" if not resumed else " (whole run)"
    now = "" if not resumed else " (this invocation)"
    rows = [(f"steps{whole}", _steps(summary))]
    if resumed:
        rows.append(("resumed from step", resumed))
    rows += [
        (f"total time (s){now}", summary["total_time_s"]),
        (f"time without start-up (s){now}", summary["time_without_startup_s"]),
        (f"sequences processed{now}", summary["sequences_processed"]),
        (f"training throughput (sequences/s){now}", summary["throughput_seq_per_s"]),
        (f"training throughput (tokens/s){now}", summary["throughput_tok_per_s"]),
    ]
    if summary.get("processes", 1) > 1:
        rows += [
            ("processes (data-parallel ranks)", summary["processes"]),
            ("throughput per process (sequences/s)", summary["throughput_seq_per_s_per_process"]),
        ]
    rows += [
        (
            f"MFU (% of dense peak){now}",
            "n/a" if summary["mfu"] is None else f"{100 * summary['mfu']:.2f}",
        ),
        ("precision / XLA", f"{summary['precision']} / {'on' if summary['xla'] else 'off'}"),
        ("global batch (sequences)", summary["global_batch"]),
    ]
    if summary["skipped_steps"]:
        rows.append(("skipped steps (non-finite gradients)", summary["skipped_steps"]))
    rows += [(f"final {k}", v) for k, v in summary["final"].items()]
    rows += [(f"held-out {k}", v) for k, v in summary.get("held_out", {}).items()]
    rows.append(("checkpoint", summary["checkpoint"] or "none"))
    if best := summary.get("best"):
        rows.append(("best checkpoint", f"{best['path']} (step {best['step']:,}, "
                                        f"{best['metric']} {best['value']:.4g})"))  # fmt: skip
    title = f"nvlm {summary['model']} {summary['task']} ({summary['stage']})"
    if summary.get("already_complete"):
        title += f": already complete at step {summary['steps']} (saved figures)"
    elif summary["interrupted"]:
        title += ": interrupted, checkpoint saved; re-run the same command to resume"
    print_table(summary_table(title, rows))


def _steps(summary: dict[str, Any]) -> str:
    total = summary.get("total_steps")
    return f"{summary['steps']:,}" + (f" of {total:,}" if total else "")


def _write_json(path: Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2) + "\n")


def copy_file(src: Path, dst: Path) -> None:
    """Copy atomically (temp name + rename)."""
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)
