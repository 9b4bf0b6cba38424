"""The one "launch or run here" helper of the training commands (and `nvlm benchmark train`).

    nvlm pretrain ... --gpus 2                       # 2 processes on this machine (horovodrun)
    nvlm pretrain ... --hosts node1:8,node2:8        # 16 processes, mpirun/horovodrun -H
    nvlm pretrain ... --gpus 16 --launcher srun      # inside a Slurm allocation
    nvlm pretrain ... --gpus 2 --dry-run             # print the command, start nothing

A training command builds a `TrainingJob` (its child command line, how to resolve its config,
how to train) and calls `launch_training`, whose `launch_or_run` does one of four things:
- one process, no launcher needed: resolve and train in this process;
- more processes, started from a shell: resolve, write RUN/config.yaml, build the launcher
  command (nvlm.launch), run it, stream rank 0, exit with the worst rank's status;
- a rank started by that launcher (NVLM_CHILD=1): read RUN/config.yaml and nothing else, train;
- a rank of a job someone else launched (`mpirun -np 8 nvlm pretrain ...`): every rank resolves
  the same config (`--gpus` defaults to the job size), rank 0 prepares RUN, all train.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.markup import escape

from nvlm.errors import Interrupted, RunFailed, UserError
from nvlm.launch import command as command_mod
from nvlm.launch import ranks
from nvlm.launch.hosts import Host, parse_hosts, read_hostfile, total_slots
from nvlm.run_dir import CHECKPOINTS, CONFIG, SUMMARY


@dataclass(frozen=True)
class LaunchOptions:
    gpus: int | None = None
    launcher: str = "auto"
    hosts: str | None = None
    hostfile: Path | None = None
    controller: str = "auto"
    dry_run: bool = False


@dataclass
class TrainingJob:
    """What a training command hands to `launch_or_run`."""

    command: list[str]  # the child's argv after `python -m nvlm`, without --config
    run: Path
    resolve: Callable[[int | None], tuple[Any, list[str]]]  # --gpus -> (RunConfig, notes)
    train: Callable[[Any, bool, bool], dict]  # (config, resume, overwrite) -> summary
    config_file: Path | None = None  # the command's --config (a child's RUN/config.yaml)
    resume: bool = True
    overwrite: bool = False
    json_out: bool = False
    inputs: dict | None = None  # {"--data": path, "--init": src}: never written over


@dataclass(frozen=True)
class Outcome:
    summary: dict | None  # None after --dry-run
    where: str  # here | rank | launched | dry-run
    is_root: bool = True

    @property
    def reports(self) -> bool:
        """This process reports the result (--json, follow-up steps such as an evaluation)."""
        return self.summary is not None and self.is_root and not ranks.is_child()


def launch_or_run(job: TrainingJob, opts: LaunchOptions) -> Outcome:
    if opts.gpus is not None and opts.gpus < 1:
        raise UserError(f"--gpus {opts.gpus}: give at least 1 process")
    if ranks.is_child():
        return _as_child(job)
    if ranks.under_launcher():
        return _as_rank_of_outside_job(job, opts)
    return _from_shell(job, opts)


def child_command(
    command: str, options: dict[str, str], paths: dict[str, str | Path | None]
) -> list[str]:
    """The argv after `python -m nvlm` that each launched rank runs (`--config RUN/config.yaml`
    is added when launching): `command`, then `--NAME VALUE` for each option, then for each
    path given. Paths are absolute, since a rank on another node may start in another
    directory."""
    argv = [command]
    for name, value in options.items():
        argv += [f"--{name}", value]
    for name, path in paths.items():
        if path:  # an option not given (pretrain --init)
            absolute = str(path.absolute()) if isinstance(path, Path) else os.path.abspath(path)
            argv += [f"--{name}", absolute]
    return argv


def launch_training(job: TrainingJob, opts: LaunchOptions) -> Outcome:
    """`launch_or_run`; a run stopped by a signal then raises `Interrupted`. The caller reports
    the rest (--json, a follow-up evaluation) when `outcome.reports`."""
    outcome = launch_or_run(job, opts)  # the training rank 0 printed the summary table
    summary = outcome.summary or {}
    # A run stopped by Ctrl-C / SIGTERM saved its checkpoint; its exit status still says it did
    # not finish (130 / 143). A launched rank leaves that to the parent, which got the signal.
    if summary.get("interrupted") and outcome.where in ("here", "rank") and not ranks.is_child():
        from nvlm.errors import Interrupted
        from nvlm.report import emit_json

        if job.json_out and outcome.reports:
            emit_json(summary)
        raise Interrupted(
            f"interrupted at step {summary['steps']} of {summary.get('total_steps', '?')}; "
            f"checkpoint {summary['checkpoint']} saved, re-run the same command to resume",
            summary.get("signal") or 15,
        )
    return outcome


# -- started from a shell ----------------------------------------------------------------------
def _from_shell(job: TrainingJob, opts: LaunchOptions) -> Outcome:
    from nvlm import config as config_mod
    from nvlm import run_dir
    from nvlm.report import info, warn

    requested = opts.launcher.strip().lower()
    if requested not in command_mod.CHOICES:
        raise UserError(
            f"unknown launcher {opts.launcher!r} (choose {', '.join(command_mod.CHOICES)})"
        )
    hosts = _hosts(opts)
    gpus = opts.gpus if opts.gpus is not None else (total_slots(hosts) if hosts else None)
    cfg, notes = job.resolve(gpus)
    for note in notes:
        info(f"[cyan]note:[/cyan] {note}")
    n = cfg.train.gpus
    if requested == "none" or (requested == "auto" and n == 1 and not hosts):
        if n > 1 or hosts:
            raise UserError(
                f"--launcher none trains in this process, but the run needs {n} "
                f"process{'es' if n > 1 else ''}"
                f"{' on --hosts' if hosts else ''} (pass --gpus 1, or another --launcher)"
            )
        if opts.dry_run:
            info("dry run: 1 process, which trains in this process (nothing to launch)")
            return Outcome(None, "dry-run")
        return Outcome(job.train(cfg, job.resume, job.overwrite), "here")

    launcher = command_mod.choose_launcher(requested, installed=not opts.dry_run)
    executable = command_mod.find_launcher(launcher)
    plan = command_mod.LaunchPlan(
        launcher=launcher,
        processes=n,
        hosts=tuple(hosts),
        program=command_mod.child_program(
            [*job.command, "--config", str((job.run / CONFIG).absolute())]
        ),
        controller=command_mod.default_controller(opts.controller, _mpi_built),
        env=dict(os.environ),
        as_root=_is_root(),
        executable=executable,
        cpu_workers=not _gpus_visible(),
    )
    cmd = command_mod.build_command(plan)
    t = cfg.train
    info(
        f"{n} processes ({launcher}): global batch {cfg.global_batch:,} = {t.batch_size} x "
        f"{t.accumulation} x {n}, effective lr {cfg.effective_lr:g}"
    )
    if opts.dry_run:
        if executable is None:
            warn(
                f"{launcher} is not installed here: the command is printed for another machine "
                f"(it runs {launcher} from that machine's PATH)"
            )
        if job.json_out:
            from nvlm.report import emit_json

            emit_json(
                {
                    "launcher": launcher,
                    "processes": n,
                    "argv": cmd.argv,
                    "env": cmd.env,
                    "command": cmd.render(),
                    "config": str(job.run / CONFIG),
                }
            )
        else:
            sys.stdout.write(cmd.render() + "\n")
            sys.stdout.flush()
        info(
            f"dry run: nothing started, nothing written; the run writes {job.run}/config.yaml "
            "before it starts the command above"
        )
        return Outcome(None, "dry-run")

    # MFU's denominator, measured now while the machine is idle (the ranks share it once they
    # run); rank 0 reads it from the cache (nvlm.train.peak).
    _measure_peak(cfg.train.precision)
    # What rank 0 would do first, done once here: the run-directory policy, then the config
    # every child reads. This process holds RUN's lock until every rank has ended.
    with run_dir.locked(job.run, job.inputs) as lock_fd:
        run_dir.prepare(
            job.run,
            config_mod.to_dict(cfg),
            resume=job.resume,
            overwrite=job.overwrite,
            inputs=job.inputs,
        )
        config_mod.write(cfg, job.run)
        info(f"[dim]{escape(cmd.render())}[/dim]")
        others = "rank 1 logs" if n == 2 else f"ranks 1-{n - 1} log"
        info(f"rank 0 streams below; {others} to {job.run / 'logs'}/rank-N.log")
        return Outcome(_supervise(cmd, job, n, lock_fd), "launched")


def _supervise(cmd, job: TrainingJob, n: int, lock_fd: int | None = None) -> dict:
    from nvlm.launch.job import Job
    from nvlm.report import info

    env = dict(os.environ)
    env[ranks.CHILD_VARIABLE] = "1"
    if sys.stderr.isatty():  # let rank 0 draw rich progress for this terminal
        env["NVLM_TTY_COLUMNS"] = str(shutil.get_terminal_size().columns)
    result = Job(
        cmd,
        run=job.run,
        processes=n,
        env=env,
        say=info,
        keep_fds=() if lock_fd is None else (lock_fd,),
    ).run_to_end()
    if result.exit_code and result.signum is not None:
        # Stopped at once (a second Ctrl-C), or before the ranks could stop cleanly (still
        # starting): the user's interruption all the same (130 / 143), not a failure.
        saved = any((job.run / CHECKPOINTS).glob("ckpt-*.index"))
        raise Interrupted(
            f"interrupted before the job could save a checkpoint (logs: {job.run / 'logs'}); "
            f"re-run the same command to {'resume from its last checkpoint' if saved else 'start'}",
            result.signum,
        )
    if result.exit_code:
        failure = RunFailed(result.message or "the job failed")
        failure.exit_code = result.exit_code
        raise failure
    try:
        summary = json.loads((job.run / SUMMARY).read_text())
    except (OSError, ValueError):
        raise RunFailed(
            f"the job ended without writing {job.run}/summary.json; see {job.run}/logs/"
        ) from None
    if summary.get("interrupted"):
        # The ranks stopped after the same step and rank 0 saved a checkpoint; all exited 0 (a
        # non-zero rank would make the launcher end the others, maybe mid-save). The exit
        # status says the run did not finish: the parent's signal, else the ranks' (Slurm
        # signalling the ranks themselves).
        if job.json_out:
            from nvlm.report import emit_json

            emit_json(summary)
        raise Interrupted(
            f"interrupted at step {summary['steps']} of {summary.get('total_steps', '?')}; "
            f"checkpoint {summary['checkpoint']} saved, re-run the same command to resume",
            result.signum or summary.get("signal") or signal.SIGTERM,
        )
    return summary


def _measure_peak(precision: str) -> None:
    from nvlm.train.peak import peak

    try:
        peak(precision)
    except Exception:  # noqa: BLE001, S110 - without it the summary says MFU n/a
        pass


def _hosts(opts: LaunchOptions) -> list[Host]:
    if opts.hosts and opts.hostfile:
        raise UserError("give --hosts or --hostfile, not both")
    if opts.hosts:
        return parse_hosts(opts.hosts)
    if opts.hostfile:
        return read_hostfile(opts.hostfile)
    return []


def _mpi_built() -> bool:
    try:
        import horovod.tensorflow as hvd
    except ImportError:
        return False
    return bool(hvd.mpi_built())


def _gpus_visible() -> bool:
    import tensorflow as tf  # loaded already by the model plugin

    return bool(tf.config.list_physical_devices("GPU"))


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


# -- one rank of a job -------------------------------------------------------------------------
def _as_child(job: TrainingJob) -> Outcome:
    """A rank started by `_from_shell`: RUN/config.yaml is the whole config."""
    from nvlm import config as config_mod
    from nvlm import dist
    from nvlm.launch.parent_watch import ParentWatch
    from nvlm.launch.rank_log import RankLog

    if job.config_file is None:
        raise UserError(
            "a launched rank needs --config RUN/config.yaml (NVLM_CHILD is set: "
            "unset it to run nvlm by hand)"
        )
    rank = ranks.rank()
    log = RankLog(job.run, rank)
    log.redirect()
    if rank == 0 and os.environ.get("NVLM_TTY_COLUMNS"):
        os.environ["TTY_COMPATIBLE"] = "1"  # rich: draw progress as on the parent's terminal
        os.environ["COLUMNS"] = os.environ["NVLM_TTY_COLUMNS"]
    log.started()

    # No rank outlives the nvlm process that launched it (started before Horovod, which may
    # wait forever for a peer that was killed with it).
    ParentWatch(before_exit=log.orphaned).start()
    try:
        world = dist.world()  # Horovod up, rank pinned, before TensorFlow starts its runtime
        sys.stderr.write(
            f"nvlm: rank {world.rank} of {world.size} (local {world.local_rank} of "
            f"{world.local_size}), Horovod {world.controller}, {world.device}\n"
        )
        cfg = config_mod.load(job.config_file)
        _check_world(cfg, world.size)
        summary = job.train(cfg, True, False)
    except Interrupted:
        # Stopped on a signal after the agreed step's checkpoint: a clean end. Exit 0, since a
        # non-zero rank makes the launcher end the others (rank 0 maybe mid-save); the parent
        # reports the interruption.
        log.finished(0)
        raise SystemExit(0) from None
    except BaseException as exc:
        code, error = _exit_status(exc)
        log.finished(code, error)
        if code == 0:
            raise
        # Leave at once: a normal exit runs Horovod's shutdown, which waits (measured: ~8 s)
        # for the other ranks, while the launcher ends them only once this process is gone.
        if isinstance(exc, UserError | RunFailed):
            sys.stderr.write(f"nvlm: error: {exc}\n")
        else:
            traceback.print_exc()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    log.finished(0)
    return Outcome(summary, "rank", is_root=world.is_root)


def _as_rank_of_outside_job(job: TrainingJob, opts: LaunchOptions) -> Outcome:
    """A rank of `mpirun ... nvlm pretrain ...` or `srun ... nvlm pretrain ...` typed by hand."""
    from nvlm import config as config_mod
    from nvlm import dist, run_dir
    from nvlm.launch.rank_log import RankLog
    from nvlm.report import info

    world = dist.world()
    if opts.gpus is not None and opts.gpus != world.size:
        raise UserError(
            f"--gpus {opts.gpus}, but the launcher started {world.size} ranks "
            f"(drop --gpus, or start {opts.gpus})"
        )
    cfg, notes = job.resolve(world.size)
    _check_world(cfg, world.size)
    if world.is_root:
        for note in notes:
            info(f"[cyan]note:[/cyan] {note}")
        if opts.dry_run:
            info(f"dry run: already rank 0 of {world.size} under a launcher; nothing to launch")
        else:
            run_dir.prepare(
                job.run, config_mod.to_dict(cfg), resume=job.resume, overwrite=job.overwrite
            )
            config_mod.write(cfg, job.run)
    world.barrier()  # RUN exists (and was cleared by --overwrite) before other ranks log there
    if opts.dry_run:
        return Outcome(None, "dry-run", is_root=world.is_root)
    if not world.is_root:
        RankLog(job.run, world.rank).redirect()
    summary = job.train(cfg, True, False)
    # Every rank leaves once rank 0 has written its checkpoint and summary: an interrupted run
    # exits 130 / 143 on every rank, and a launcher ends the others at the first non-zero exit.
    world.barrier()
    return Outcome(summary, "rank", is_root=world.is_root)


def _check_world(cfg, size: int) -> None:
    if cfg.train.gpus != size:
        raise UserError(
            f"the run config says train.gpus={cfg.train.gpus} but {size} ranks are running "
            "(start as many ranks as train.gpus, or let nvlm launch them)"
        )


def _exit_status(exc: BaseException) -> tuple[int, str | None]:
    if isinstance(exc, SystemExit):
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        return code, None if code == 0 else f"exit {exc.code}"
    if isinstance(exc, KeyboardInterrupt):
        return 130, "interrupted"
    code = getattr(exc, "exit_code", 1)
    return (code if isinstance(code, int) and code else 1), f"{type(exc).__name__}: {exc}"
