"""Running a benchmark sweep: every point resolved (bad input fails before anything runs), the
peaks measured while the machine is idle, synthetic data written once, then the points in turn
with a progress bar, a check that no other process is loading the machine, and each record
handed on as soon as it is measured (so `--out` keeps what an interrupted sweep measured).

Training points with more than one process run under the launcher `nvlm pretrain --gpus N`
uses (a job of `nvlm benchmark train-rank` ranks); one process runs here.
"""

from __future__ import annotations

import dataclasses
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from nvlm.bench import infer_bench, records, timing, train_bench
from nvlm.errors import Interrupted, RunFailed
from nvlm.report import console, info, plain_line

OnRecord = Callable[[dict[str, Any]], None]


@dataclasses.dataclass
class Outcome:
    records: list[dict[str, Any]]
    planned: int
    stopped: Exception | None = None  # Interrupted / RunFailed after some points


@dataclasses.dataclass(frozen=True)
class Guard:
    """How busy other processes may keep the machine (share of its CPUs) and how long to
    wait for them before stopping."""

    max_busy: float = 0.25
    max_wait_s: float = 120.0


# ------------------------------------------------------------------------------------ training
def run_train(
    sweep: train_bench.TrainSweep,
    launch,  # nvlm.launch.training.LaunchOptions
    *,
    guard: Guard,
    workdir: Path | None,
    on_record: OnRecord,
) -> Outcome:
    from nvlm import registry

    plugin = registry.get(sweep.model)
    train_bench.check_sweep(sweep, plugin)
    points = sweep.points()
    cfgs, told = [], set()
    for point in points:
        cfg, notes = train_bench.resolve(plugin, sweep, point, sweep.data)
        for note in notes:
            if note not in told:
                told.add(note)
                info(f"[cyan]note:[/cyan] {note}")
        cfgs.append(cfg)
    _measure_peaks({c.train.precision for c in cfgs})
    tmp = Path(tempfile.mkdtemp(prefix="nvlm-benchmark-", dir=workdir))
    out = Outcome([], len(points))
    try:
        data = sweep.data
        if data is None and sweep.task == "pretrain":
            info("writing synthetic data (the shape and statistics of real shards)")
            data = train_bench.synthetic_data(plugin, sweep, cfgs, tmp / "data")
        with _stoppable(), SweepProgress(len(points)) as progress:
            for i, point in enumerate(points):
                share = timing.wait_until_quiet(guard.max_busy, guard.max_wait_s, say=info)
                progress.start(i, point.label())
                record = _train_point(plugin, sweep, point, data, tmp / f"point-{i}", launch)
                record = _complete(record, "train", sweep.preset, sweep.data, share)
                out.records.append(record)
                on_record(record)
                progress.done(i, _figure(record))
    except (Interrupted, timing.MachineBusy, KeyboardInterrupt, _Terminated) as exc:
        out.stopped = _stop_reason(exc, out, len(points))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _train_point(plugin, sweep, point, data: Path | None, run: Path, launch) -> dict[str, Any]:
    from nvlm.launch.training import TrainingJob, launch_or_run

    argv = ["benchmark", "train-rank", "--model", plugin.name, "--task", sweep.task,
            "--steps", str(sweep.steps), "--warmup", str(sweep.warmup),
            "--out", str(run.absolute())]  # fmt: skip
    if data is not None:
        argv += ["--data", str(Path(data).absolute())]
    if sweep.init:
        argv += ["--init", str(Path(sweep.init).absolute())]

    def resolve(gpus: int | None):
        return train_bench.resolve(
            plugin, sweep, dataclasses.replace(point, gpus=gpus or point.gpus), data
        )

    job = TrainingJob(
        command=argv,
        run=run,
        resolve=resolve,
        train=train_bench.rank_job(
            plugin,
            task=sweep.task,
            data=data,
            run=run,
            steps=sweep.steps,
            warmup=sweep.warmup,
            init=sweep.init,
        ),  # fmt: skip
        inputs={"--data": data, "--init": sweep.init},
    )
    outcome = launch_or_run(job, dataclasses.replace(launch, gpus=point.gpus))
    if outcome.summary is None:
        raise RunFailed(f"the {point.label()} point returned no figures")
    return dict(outcome.summary)


# ----------------------------------------------------------------------------------- inference
def run_infer(sweep: infer_bench.InferSweep, *, guard: Guard, on_record: OnRecord) -> Outcome:
    from nvlm import registry

    plugin = registry.get(sweep.model)
    infer_bench.check_sweep(sweep, plugin)
    plan, told = [], set()
    for precision in sweep.precisions:
        cfg, notes = infer_bench.resolve(plugin, sweep, precision)
        for note in notes:
            if note not in told:
                told.add(note)
                info(f"[cyan]note:[/cyan] {note}")
        plan += [(cfg, batch) for batch in infer_bench.batch_sizes(sweep, cfg)]
    _measure_peaks({cfg.train.precision for cfg, _ in plan})
    out = Outcome([], len(plan))
    try:
        with _stoppable(), SweepProgress(len(plan)) as progress:
            for i, (cfg, batch) in enumerate(plan):
                share = timing.wait_until_quiet(guard.max_busy, guard.max_wait_s, say=info)
                progress.start(i, f"{cfg.train.precision}, batch {batch}")
                record = infer_bench.measure_point(
                    plugin, cfg, task=sweep.task, batch=batch, steps=sweep.steps,
                    warmup=sweep.warmup, init=sweep.init,
                )  # fmt: skip
                record = _complete(record, "infer", sweep.preset, None, share)
                out.records.append(record)
                on_record(record)
                progress.done(i, _figure(record))
    except (timing.MachineBusy, KeyboardInterrupt, _Terminated) as exc:
        out.stopped = _stop_reason(exc, out, len(plan))
    return out


# -------------------------------------------------------------------------------------- common
def _complete(record: dict, kind: str, preset: str | None, data: Path | None,
              share: float | None) -> dict:  # fmt: skip
    full = records.base_record(kind)
    full.update(record)
    full["preset"] = preset
    full["data"] = str(data) if data is not None else "synthetic"
    full["other_processes_cpu_share"] = share
    return full


def _figure(record: dict) -> str:
    if record["unit"] == "tokens/s":
        return f"{record['throughput_tok_per_s']:,.0f} tokens/s"
    return f"{record['throughput_seq_per_s']:,.2f} sequences/s"


def _measure_peaks(precisions: set[str]) -> None:
    """MFU's denominators, measured now while the machine is idle (cached per machine)."""
    from nvlm.train.peak import peak

    for precision in sorted(precisions):
        try:
            peak(precision)
        except Exception:  # noqa: BLE001, S110 - without it the records say MFU n/a
            pass


def _stop_reason(exc: BaseException, out: Outcome, planned: int) -> Exception:
    done = f"{len(out.records)} of {planned} points measured"
    if isinstance(exc, timing.MachineBusy):
        return RunFailed(f"stopped early: {exc} ({done}; --max-busy 1 measures anyway)")
    if isinstance(exc, Interrupted):
        return Interrupted(f"interrupted: {done}", exc.exit_code - 128)
    signum = exc.signum if isinstance(exc, _Terminated) else signal.SIGINT
    return Interrupted(f"interrupted: {done}", signum)


class _Terminated(Exception):
    def __init__(self, signum: int) -> None:
        super().__init__(f"signal {signum}")
        self.signum = signum


@contextmanager
def _stoppable() -> Iterator[None]:
    """SIGTERM stops the sweep like Ctrl-C: the points measured so far are reported."""

    def handler(signum, frame):
        raise _Terminated(signum)

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class SweepProgress:
    """A bar over the points with ETA in a terminal; a plain line per point elsewhere."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.t0 = time.monotonic()
        self.bar = None
        if console().is_terminal:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self.bar = Progress(
                TextColumn("[bold]benchmark"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("points"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                TextColumn("{task.description}"),
                console=console(),
            )
            self.task = self.bar.add_task("", total=total)

    def __enter__(self) -> SweepProgress:
        if self.bar is not None:
            self.bar.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()

    def start(self, i: int, label: str) -> None:
        if self.bar is not None:
            self.bar.update(self.task, description=label)
            return
        eta = ""
        if i:
            left = (time.monotonic() - self.t0) / i * (self.total - i)
            eta = f", about {left / 60:.1f} min left"
        plain_line(f"benchmark: point {i + 1}/{self.total} ({label}){eta}")

    def done(self, i: int, figure: str) -> None:
        if self.bar is not None:
            self.bar.update(self.task, advance=1)
            info(f"point {i + 1}/{self.total}: {figure}")
            return
        plain_line(f"benchmark: point {i + 1}/{self.total}: {figure}")
