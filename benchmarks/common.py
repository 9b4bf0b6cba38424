"""Shared pieces of the model benchmarks: machine description, load check, timing, statistics.

The benchmarks run on shared 2-core machines, so every figure is printed with the load average
seen while it was measured, and a run waits (bounded) for the load to drop before it starts.
"""

from __future__ import annotations

import gc
import os
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# Dense matmul peak of TensorFlow on the 2 cores of this project's machines (AVX-512 with
# bf16), measured with large GEMMs: see shared/notes/horovod.md, "CPU performance facts".
PEAK_FLOPS = {"fp32": 0.2e12, "bf16": 0.38e12}
MFU_NOTE = (
    "MFU: the FLOPs of every position of the padded batch (the model's count, the same for "
    "both models) / the nominal peak above; a model that skips work (nvlm: padding rows, the "
    "positions no head reads) can pass 100%."
)
PRECISIONS = ("fp32", "bf16")


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
def cpu_info(key: str) -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(key):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def machine_lines() -> list[str]:
    """What to print at the top of every benchmark: CPU, cores, library versions, command."""
    import keras
    import tensorflow as tf

    try:
        import keras_hub

        hub = keras_hub.__version__
    except ImportError:
        hub = "not installed"
    flags = set(cpu_info("flags").split())
    isa = [f for f in ("avx512f", "avx512_bf16", "amx_bf16") if f in flags]
    return [
        f"machine: {cpu_info('model name') or platform.processor()}, {os.cpu_count()} cores "
        f"({' '.join(isa) or 'no AVX-512'})",
        f"software: Python {platform.python_version()}, TensorFlow {tf.__version__}, "
        f"Keras {keras.__version__}, keras-hub {hub}",
        f"command: {command_line()}",
    ]


def command_line() -> str:
    return shlex.join(["python", *sys.argv])


# ------------------------------------------------------------------------------- load average
def load_average() -> float:
    """The 1-minute load average (runnable processes), as `uptime` shows it."""
    return os.getloadavg()[0]


def wait_for_low_load(threshold: float, max_wait_s: float, poll_s: float = 15.0) -> float:
    """Wait until the 1-minute load is at most `threshold`, or `max_wait_s` has passed.

    Returns the load seen last. Other people's jobs on a 2-core machine halve a figure, so a
    benchmark started under load is worth little; but it must not hang forever either.
    """
    deadline = time.monotonic() + max_wait_s
    load = load_average()
    while load > threshold and time.monotonic() < deadline:
        print(f"  load average {load:.2f} > {threshold}: waiting {poll_s:.0f} s", flush=True)
        time.sleep(poll_s)
        load = load_average()
    if load > threshold:
        print(
            f"  load average still {load:.2f} after {max_wait_s:.0f} s: measuring anyway",
            flush=True,
        )
    return load


# ------------------------------------------------------------------------------------- timing
@dataclass
class Timing:
    """Per-step wall times of one measured configuration, with the load seen around them."""

    batch_size: int
    seconds: list[float] = field(default_factory=list)
    loads: list[float] = field(default_factory=list)

    def run(self, step: Callable[[], object], steps: int) -> Timing:
        """Time `steps` calls of `step` (each must return only when its work is done)."""
        self.loads.append(load_average())
        for _ in range(steps):
            t0 = time.perf_counter()
            step()
            self.seconds.append(time.perf_counter() - t0)
        self.loads.append(load_average())
        return self

    @property
    def median_s(self) -> float:
        return statistics.median(self.seconds)

    @property
    def sequences_per_s(self) -> float:
        """Median-of-steps throughput: batch size / median step time."""
        return self.batch_size / self.median_s

    def percentile_ms(self, q: float) -> float:
        """The q-th percentile of the step times (linear interpolation between ranks), in ms."""
        return float(np.percentile(np.asarray(self.seconds), q)) * 1e3

    @property
    def load(self) -> str:
        """Load average range seen while measuring, e.g. "0.9-1.3"."""
        return f"{min(self.loads):.1f}-{max(self.loads):.1f}"


def warm_up(step: Callable[[], object], steps: int) -> float:
    """Run `step` untimed (tracing, XLA compilation, oneDNN primitive caches); return seconds."""
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return time.perf_counter() - t0


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
