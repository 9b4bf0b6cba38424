"""Shared pieces of the development benchmarks: machine description, busy-machine guard, timing.

The timing, statistics, busy-machine check and peak are `nvlm benchmark`'s own
(`nvlm.bench.timing`, `nvlm.train.peak`, `nvlm.bench.records`): these scripts add only what a
comparison against keras-hub needs (settings, alternating rounds, Markdown tables). The
benchmarks run on shared 2-core machines, so every figure is printed with the share of the CPUs
that OTHER processes used while it was measured, and a run waits (bounded) for the machine to
be quiet before it starts.
"""

from __future__ import annotations

import gc
import os
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from nvlm.bench import timing

T = TypeVar("T")

MFU_NOTE = (
    "MFU: the FLOPs of every position of the padded batch (the model's count, the same for "
    "both models) / the measured peak above; a model that skips work (nvlm: padding rows, the "
    "positions no head reads) is credited with FLOPs it did not do, so its MFU overstates "
    "what the hardware did."
)
PRECISIONS = ("fp32", "bf16")
MAX_BUSY = 0.25  # the default of `nvlm benchmark --max-busy`
# /proc/stat counts in clock ticks (10 ms): over a window of w seconds a share is uncertain by
# about 1 / (100 w) (2 cores), so below a second of measured work the figure says nothing.
MIN_WINDOW_S = 1.0


@dataclass(frozen=True)
class Setting:
    """One precision / XLA combination a model is measured in."""

    precision: str  # "fp32" or "bf16" (nvlm's names; bf16 = Keras "mixed_bfloat16")
    xla: bool

    def __str__(self) -> str:
        return f"{self.precision}{'+XLA' if self.xla else ''}"

    @classmethod
    def parse(cls, text: str) -> Setting:
        precision, _, xla = text.partition("+")
        if precision not in PRECISIONS or xla not in ("", "xla", "XLA"):
            raise ValueError(f"bad setting {text!r}: use fp32, bf16, fp32+xla or bf16+xla")
        return cls(precision, bool(xla))


ALL_SETTINGS = tuple(Setting(p, x) for p in PRECISIONS for x in (False, True))


def set_policy(setting: Setting) -> None:
    """Keras policy (and no TF32) for a setting; call before building a model."""
    from nvlm.train.precision import set_precision

    set_precision(setting.precision)


VOCAB = 30528  # BERT's 30522 padded to a multiple of 8, as nvlm's pretraining does


def bert_config(size: str = "base"):
    """nvlm's `BertConfig` of a named size (tiny: for a smoke test of a benchmark)."""
    from nvlm.models.bert.config import BertConfig

    return BertConfig.from_size(size, vocab_size=VOCAB)


def keras_hub_backbone(cfg):
    """`keras_hub.models.BertBackbone` with the shape of nvlm's `cfg` (global dtype policy)."""
    import keras_hub

    return keras_hub.models.BertBackbone(
        vocabulary_size=cfg.vocab_size,
        num_layers=cfg.num_layers,
        num_heads=cfg.num_heads,
        hidden_dim=cfg.hidden_size,
        intermediate_dim=cfg.intermediate_size,
        dropout=cfg.dropout,
        max_sequence_length=cfg.max_position,
    )


def keras_hub_features(batch: dict) -> dict:
    """nvlm's (shard) input names -> keras-hub's."""
    return {
        "token_ids": batch["input_ids"],
        "segment_ids": batch["segment_ids"],
        "padding_mask": batch["input_mask"],
    }


def release_models() -> None:
    """Drop Keras' global state and collect, so that the next setting starts clean."""
    import keras

    keras.backend.clear_session()
    gc.collect()


# ------------------------------------------------------------------------ machine description
def cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def keras_hub_version() -> str:
    try:
        import keras_hub
    except ImportError:
        return "not installed"
    return keras_hub.__version__


def machine_lines() -> list[str]:
    """What to print at the top of every benchmark: machine, library versions, command."""
    from nvlm.bench import records

    m, v = records.machine(), records.versions()
    # The vector units decide fp32 vs bf16 speed on a CPU; `records.machine` does not say them.
    isa = [f for f in ("avx512f", "avx512_bf16", "amx_bf16") if f in cpu_flags()]
    return [
        f"machine: {m['cpu']}, {m['cores']} cores ({' '.join(isa) or 'no AVX-512'}), "
        f"{', '.join(m['gpus']) or 'no GPU'}",
        f"software: Python {v['python']}, nvlm {v['nvlm']}, TensorFlow {v['tensorflow']}, "
        f"Keras {v['keras']}, Horovod {v['horovod'] or 'not installed'}, "
        f"keras-hub {keras_hub_version()}",
        f"command: {command_line()}",
    ]


def json_header() -> dict[str, Any]:
    """The machine, versions, command and statistics conventions, for a --json file."""
    from nvlm.bench import records

    return {
        "machine": records.machine(),
        "versions": {**records.versions(), "keras_hub": keras_hub_version()},
        "command": command_line(),
        "percentile_method": timing.PERCENTILE_METHOD,
        "peaks_tflops": {p: found.tflops for p, found in _PEAKS.items()},
    }


def command_line() -> str:
    # Not `records.command_line()`: that one names the `nvlm` CLI; these are scripts.
    return shlex.join(["python", *sys.argv])


# ------------------------------------------------------------------------- the measured peak
_PEAKS: dict[str, Any] = {}  # precision -> nvlm.train.peak.Peak, fixed for the whole run


def peak_line(precisions) -> str:
    """Look up (or measure, when this machine has none cached) the dense matmul peak of each
    precision, and say which figures every MFU below divides by. Call it once the machine is
    quiet: a peak measured under someone else's load is too low and inflates every MFU."""
    from nvlm.train import peak as peak_mod

    parts = []
    for precision in dict.fromkeys(precisions):
        was_cached = peak_mod.cached(precision) is not None
        found = _PEAKS[precision] = peak_mod.peak(precision)
        when = (
            "cached, measured " + time.strftime("%Y-%m-%d %H:%M", time.localtime(found.measured_at))
            if was_cached
            else "measured now"
        )
        parts.append(f"{precision} {found.tflops:.3f} TFLOP/s ({when})")
    return (
        f"peak (dense {found.size}^3 matmuls on {found.device}, measured by nvlm.train.peak; "
        f"`nvlm benchmark peak --refresh` measures again): " + ", ".join(parts)
    )


def mfu(per_s: float, flops_per_item: float, precision: str) -> float:
    """Model FLOPs utilisation against this machine's measured peak (`peak_line` first)."""
    from nvlm.train import peak as peak_mod

    found = _PEAKS.get(precision) or _PEAKS.setdefault(precision, peak_mod.peak(precision))
    return per_s * flops_per_item / (found.tflops * 1e12)


# ----------------------------------------------------------------------- the busy-machine guard
def add_guard_options(parser, max_wait: float) -> None:
    parser.add_argument(
        "--max-busy",
        type=float,
        default=None,
        help=f"share of the CPUs other processes may use before a measurement (default "
        f"{MAX_BUSY}; 1 measures anyway), as `nvlm benchmark --max-busy`",
    )
    parser.add_argument(
        "--max-load",
        type=float,
        default=None,
        help="older form of --max-busy: other processes' load, read as --max-busy LOAD / cores",
    )
    parser.add_argument(
        "--max-wait",
        type=float,
        default=max_wait,
        help="seconds to wait for a busy machine before stopping",
    )


def max_busy(args) -> float:
    if args.max_busy is not None:
        return args.max_busy
    if args.max_load is not None:
        return min(1.0, args.max_load / (os.cpu_count() or 1))
    return MAX_BUSY


def wait_quiet(args, max_wait_s: float | None = None, *, stream=None) -> float | None:
    """`nvlm benchmark`'s guard: wait (bounded) until other processes use at most --max-busy of
    the CPUs, or stop the script with the harness's one-line reason."""
    out = stream or sys.stdout

    def say(message: str) -> None:
        print(f"  {message}", file=out, flush=True)

    wait = args.max_wait if max_wait_s is None else max_wait_s
    try:
        share = timing.wait_until_quiet(max_busy(args), wait, say=say)
    except timing.MachineBusy as exc:
        sys.exit(f"stopped: {exc} (--max-busy 1 measures anyway)")
    say(f"other processes' share of the CPUs before measuring: {percent(share)}")
    return share


def others_during(
    fn: Callable[[], T], min_window_s: float = MIN_WINDOW_S
) -> tuple[T, float | None]:
    """(fn(), the share of the CPUs other processes used while it ran; None when it ran for
    less than `min_window_s`).

    `timing.foreign_cpu` measures the machine's busy time minus this process's (and its waited
    children's) over a window it normally sleeps through; here the window is the measured
    work itself, so the figure says what competed with it, unlike a load average, which counts
    the benchmark's own threads too."""
    result: list[T] = []
    t0 = time.monotonic()
    share = timing.foreign_cpu(0.0, sleep=lambda _seconds: result.append(fn()))
    if time.monotonic() - t0 < min_window_s:
        share = None
    return result[0], share


def percent(share: float | None) -> str:
    return "n/a" if share is None else f"{100 * share:.0f}%"


def weighted_share(windows: list[tuple[float, float]]) -> float | None:
    """Other processes' CPU share over several measured windows of (share, seconds): weighted
    by duration, so that many short windows (one step each, a few clock ticks long, noisy)
    add up to the share over all of them; None under MIN_WINDOW_S in all."""
    total = sum(seconds for _, seconds in windows)
    if total < MIN_WINDOW_S:
        return None
    return sum(share * seconds for share, seconds in windows) / total


# ------------------------------------------------------------------------------------- timing
@dataclass
class Timing:
    """The per-call times of one measured configuration (`timing.time_calls`) with its batch
    size and the other processes' CPU share seen in each timed run; every figure is computed
    by `timing.Latencies`."""

    batch_size: int
    seconds: list[float] = field(default_factory=list)
    others: list[tuple[float, float]] = field(default_factory=list)  # (share, seconds)

    def run(self, step: Callable[[], object], steps: int) -> Timing:
        """Time `steps` calls of `step` (each must return only when its work is done)."""
        # Each round's share is kept with its length, however short: `others_share` adds them.
        seconds, share = others_during(lambda: timing.time_calls(step, steps), min_window_s=0.0)
        self.seconds.extend(seconds)
        if share is not None:
            self.others.append((share, sum(seconds)))
        return self

    @property
    def latencies(self) -> timing.Latencies:
        return timing.Latencies(tuple(self.seconds))

    @property
    def median_s(self) -> float:
        """p50 of the call times (linear interpolation: the median)."""
        return self.latencies.percentile_ms(50) / 1e3

    @property
    def sequences_per_s(self) -> float:
        """These scripts' throughput: batch size / median call time (robust to a stall of
        someone else's job in a few timed calls; `nvlm benchmark` divides every sequence by
        every second instead, see `all_sequences_per_s`)."""
        return self.batch_size / self.median_s

    @property
    def all_sequences_per_s(self) -> float:
        """`nvlm benchmark`'s throughput: every timed sequence / every timed second."""
        return self.latencies.per_second(self.batch_size)

    def percentile_ms(self, q: float) -> float:
        return self.latencies.percentile_ms(q)

    @property
    def others_share(self) -> float | None:
        """Other processes' share of the CPUs over the timed calls (None: not measurable)."""
        return weighted_share(self.others)

    @property
    def others_cpu(self) -> str:
        """The same as a table cell, e.g. "4%"."""
        return percent(self.others_share)


def warm_up(step: Callable[[], object], steps: int) -> float:
    """Run `step` untimed (tracing, XLA compilation, oneDNN primitive caches); return seconds."""
    return sum(timing.time_calls(step, steps))


def interleaved(
    steps: dict[str, Callable[[], object]], batch_size: int, rounds: int, per_round: int
) -> dict[str, Timing]:
    """Time several step functions in alternating rounds, so that a change of machine load
    during the run hits all of them alike instead of whichever happened to run last."""
    timings = {name: Timing(batch_size) for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            timings[name].run(step, per_round)
    return timings


def table(header: list[str], rows: list[list[object]]) -> str:
    """A Markdown table (also readable on a terminal)."""
    cells = [[str(c) for c in r] for r in [header, *rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    fmt = "| " + " | ".join(f"{{:<{w}}}" for w in widths) + " |"
    lines = [fmt.format(*cells[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += [fmt.format(*r) for r in cells[1:]]
    return "\n".join(lines)
