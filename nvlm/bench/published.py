"""NVIDIA's published speed figures, beside ours: `nvlm benchmark train|infer --compare`.

The figures are data, nvlm/resources/published.yaml (from shared/notes/nvidia-presets.md and the
DeepLearningExamples READMEs it names); this module holds none of them. It loads the file once,
validates it (unknown or missing keys, types, a system and GPU that no shipped preset has) and
answers one question: which published figure is a measured point comparable with? Comparable
means the same kind, model, size, task, sequence (phase and seq_len; Transformer-XL: tgt_len and
mem_len), system and GPU (a preset's system.name and system.gpu), GPU count, precision, per-GPU
batch and metric. A figure whose batch NVIDIA did not state matches any batch and says so.

    system, gpu = system_of_preset("dgxa100-amp"), gpu_of_preset("dgxa100-amp")
    point = dict(kind="train", model="electra", size="base", task="squad", phase=None,
                 seq_len=384, system=system, gpu=gpu, gpus=1, precision="amp", batch=32,
                 metric="throughput")
    for figure in matches(**point):
        print(figure.describe(), "->", figure.ratio(301.0))
    if not matches(**point):
        print(no_match_note(**point))
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

import yaml

from nvlm import presets

MODELS = ("bert", "electra", "transformer-xl")
SIZES = ("base", "large")
KINDS = ("train", "infer")
TASKS = ("pretrain", "squad", "lm")
PRECISIONS = ("amp", "tf32", "fp32")
UNITS = ("sequences/s", "tokens/s", "ms")
METRICS = ("throughput", "latency_avg", "latency_p90", "latency_p95", "latency_p99")
COLLECTIONS = ("E2", "B1", "B2", "X1")
PHASE_SEQ = {1: 128, 2: 512}  # the recipes' two pretraining phases
_REQUIRED = (
    "id", "model", "size", "kind", "task", "system", "gpu", "gpus", "precision", "batch",
    "value", "unit", "metric", "collection", "source",
)  # fmt: skip
_CHOICES = dict(
    model=MODELS, size=SIZES, kind=KINDS, task=TASKS, precision=PRECISIONS, unit=UNITS,
    metric=METRICS, collection=COLLECTIONS,
)  # fmt: skip
_OPTIONAL = ("phase", "seq_len", "tgt_len", "mem_len")  # which apply depends on model and task


class PublishedDataError(ValueError):
    """published.yaml is malformed: a defect of nvlm's data, not something a user typed."""


@dataclass(frozen=True)
class Published:
    """One figure NVIDIA published, with the configuration it was measured in."""

    id: str
    model: str  # bert | electra | transformer-xl
    size: str
    kind: str  # train | infer
    task: str  # pretrain | squad | lm
    phase: int | None  # pretraining only
    seq_len: int | None  # BERT, ELECTRA
    tgt_len: int | None  # Transformer-XL
    mem_len: int | None  # Transformer-XL
    system: str  # a preset's system.name
    gpu: str  # a preset's system.gpu
    gpus: int
    precision: str
    batch: int | None  # per GPU; None: not stated, matches any batch
    value: float | tuple[float, float]  # one figure, or (low, high) over README versions
    unit: str
    metric: str
    collection: str  # E2 | B1 | B2 | X1
    source: str

    @property
    def low(self) -> float:
        return self.value[0] if isinstance(self.value, tuple) else self.value

    @property
    def high(self) -> float:
        return self.value[1] if isinstance(self.value, tuple) else self.value

    @property
    def middle(self) -> float:
        return (self.low + self.high) / 2

    def value_text(self) -> str:
        if isinstance(self.value, tuple):
            return f"{_num(self.low)}-{_num(self.high)}"
        return _num(self.value)

    def describe(self) -> str:
        """E.g. 'NVIDIA E2, DGX A100 1x A100-SXM4-40GB amp, batch 32/GPU: 285-317 sequences/s'."""
        batch = "batch not stated" if self.batch is None else f"batch {self.batch}/GPU"
        text = f"NVIDIA {self.collection}, {self.system} {self.gpus}x {self.gpu} {self.precision}"
        metric = "" if self.metric == "throughput" else f"{_metric_words(self.metric)} "
        per = " per batch" if self.metric != "throughput" else ""
        return f"{text}, {batch}: {metric}{self.value_text()} {self.unit}{per}"

    def ratio(self, ours: float) -> str:
        """Ours / NVIDIA's figure (a range's middle, with the range shown), as one phrase."""
        if isinstance(ours, bool) or not isinstance(ours, (int, float)) or not ours > 0:
            raise ValueError(f"a measured figure must be a positive number, not {ours!r}")
        if not math.isfinite(ours):
            raise ValueError(f"a measured figure must be finite, not {ours!r}")
        factor = f"{ours / self.middle:.2f}x"
        if isinstance(self.value, tuple):
            text = f"{factor} the middle ({_num(self.middle)}) of NVIDIA's {self.value_text()}"
        else:
            text = f"{factor} NVIDIA's {self.value_text()}"
        text += f" {self.unit}"
        if self.metric != "throughput":
            text += " (latency: below 1x is faster)"
        if self.batch is None:
            text += "; published batch not stated"
        return text


# --- loading and validation -------------------------------------------------------------------


@functools.cache
def figures() -> tuple[Published, ...]:
    """Every published figure, loaded and validated once per process."""
    resource = resources.files("nvlm") / "resources" / "published.yaml"
    return parse(yaml.safe_load(resource.read_text(encoding="utf-8")), str(resource))


def parse(tree: Any, where: str) -> tuple[Published, ...]:
    """Validate a loaded published.yaml tree; PublishedDataError names the record and the key."""
    if not isinstance(tree, Mapping) or set(tree) != {"figures"}:
        raise PublishedDataError(f"{where}: must hold one top-level key, figures: [records]")
    records = tree["figures"]
    if not isinstance(records, list) or not records:
        raise PublishedDataError(f"{where}: figures must be a non-empty list of records")
    out, seen = [], set()
    for index, record in enumerate(records):
        label = f"{where}: figures[{index}]"
        if isinstance(record, Mapping) and isinstance(record.get("id"), str):
            label += f" ({record['id']})"
        figure = _record(record, label)
        if figure.id in seen:
            raise PublishedDataError(f"{label}: id: {figure.id!r} is used twice")
        seen.add(figure.id)
        out.append(figure)
    return tuple(out)


def _record(record: Any, label: str) -> Published:
    def fail(key: str, message: str) -> PublishedDataError:
        return PublishedDataError(f"{label}: {key}: {message}")

    if not isinstance(record, Mapping):
        raise PublishedDataError(f"{label}: must be a mapping of {', '.join(_REQUIRED)}")
    for key in record:
        if key not in _REQUIRED + _OPTIONAL:
            allowed = ", ".join(_REQUIRED + _OPTIONAL)
            raise fail(str(key), f"unknown key (allowed: {allowed})")
    for key in _REQUIRED:
        if key not in record:
            stated = " (null when the source does not state it)" if key == "batch" else ""
            raise fail(key, f"missing{stated}")
    for key, choices in _CHOICES.items():
        if record[key] not in choices:
            raise fail(key, f"{record[key]!r} is not one of {', '.join(choices)}")
    model, task = record["model"], record["task"]
    if model == "transformer-xl":
        needed, banned = ("tgt_len", "mem_len"), ("seq_len", "phase")
    elif task == "pretrain":
        needed, banned = ("seq_len", "phase"), ("tgt_len", "mem_len")
    else:
        needed, banned = ("seq_len",), ("phase", "tgt_len", "mem_len")
    for key in needed:
        if key not in record:
            raise fail(key, f"missing (required for {model} {task})")
    for key in banned:
        if key in record:
            raise fail(key, f"does not apply to {model} {task} (remove it)")
    for key in ("id", "system", "gpu", "source"):
        if not isinstance(record[key], str) or not record[key].strip():
            raise fail(key, f"{record[key]!r} is not a non-empty string")
    for key in ("gpus", *needed):
        _positive_int(record[key], key, fail)
    if record["batch"] is not None:
        _positive_int(record["batch"], "batch", fail)
    if "phase" in needed:
        phase, seq_len = record["phase"], record["seq_len"]
        if phase not in PHASE_SEQ:
            raise fail("phase", f"{phase!r} is not 1 (seq 128) or 2 (seq 512)")
        if PHASE_SEQ[phase] != seq_len:
            raise fail("seq_len", f"phase {phase} is seq {PHASE_SEQ[phase]}, not {seq_len}")
    if (model == "transformer-xl") != (task == "lm"):
        raise fail("task", f"{task} is not a task of {model}")
    if task == "pretrain" and record["kind"] != "train":
        raise fail("kind", "pretraining figures are training figures (kind: train)")
    latency = record["metric"] != "throughput"
    throughput_unit = "tokens/s" if model == "transformer-xl" else "sequences/s"
    if record["unit"] != ("ms" if latency else throughput_unit):
        raise fail("unit", f"{record['unit']} does not fit {record['metric']} of {model}")
    if (record["system"], record["gpu"]) not in {(s, g) for _, s, g, _ in _shipped_presets()}:
        known = sorted({f"{s} / {g}" for _, s, g, _ in _shipped_presets() if g})
        raise fail(
            "system",
            f"{record['system']} / {record['gpu']} is no shipped preset's system.name / "
            f"system.gpu (known: {'; '.join(known)})",
        )
    return Published(
        **{key: record[key] for key in _REQUIRED if key != "value"},
        **{key: record.get(key) for key in _OPTIONAL},
        value=_value(record["value"], fail),
    )


def _positive_int(value: Any, key: str, fail) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise fail(key, f"{value!r} is not a positive integer")


def _value(value: Any, fail) -> float | tuple[float, float]:
    def number(x: Any) -> bool:
        return isinstance(x, (int, float)) and not isinstance(x, bool) and 0 < x < math.inf

    if number(value):
        return value
    if isinstance(value, list) and len(value) == 2 and all(map(number, value)):
        if value[0] < value[1]:
            return (value[0], value[1])
    raise fail("value", f"{value!r} is not a positive number or a [low, high] range")


@functools.cache
def _shipped_presets() -> tuple[tuple[str, str, str | None, str], ...]:
    """(name, system.name, system.gpu, precision) of every preset nvlm ships."""
    rows = []
    for path in sorted(presets.BUILTIN_DIR.glob("*.yaml")):
        system = presets.load(path).system
        rows.append((path.stem, system.name, system.gpu, system.precision))
    return tuple(rows)


# --- matching ---------------------------------------------------------------------------------


def system_of_preset(preset: str | None) -> str | None:
    """The preset's system.name ("DGX A100", "CPU (2 cores)"), None without a preset."""
    return None if preset is None else presets.load(preset).system.name


def gpu_of_preset(preset: str | None) -> str | None:
    """The preset's system.gpu ("V100-SXM2-16GB"): DGX-1 figures differ by GPU memory."""
    return None if preset is None else presets.load(preset).system.gpu


@dataclass(frozen=True)
class _Point:
    """A measured point, in the terms of the published records."""

    kind: str
    model: str
    size: str
    task: str
    phase: int | None
    seq_len: int | None  # Transformer-XL: the segment (tgt) length
    system: str | None
    gpus: int
    precision: str
    batch: int
    metric: str
    gpu: str | None
    mem_len: int | None


def _point(**kwargs: Any) -> _Point:
    return _Point(**{**kwargs, "model": kwargs["model"].lower().replace("_", "-")})


def _same_sequence(figure: Published, point: _Point) -> bool:
    if figure.model == "transformer-xl":
        return figure.tgt_len == point.seq_len and figure.mem_len == point.mem_len
    return figure.seq_len == point.seq_len and figure.phase in (None, point.phase)


# The order in which a point is narrowed down: the first test that leaves nothing is the reason.
_TESTS = (
    (
        "what",
        lambda f, p: (
            (f.kind, f.model, f.size, f.task, f.metric)
            == (p.kind, p.model, p.size, p.task, p.metric)
        ),
    ),
    ("system", lambda f, p: f.system == p.system),
    ("gpu", lambda f, p: p.gpu is None or f.gpu == p.gpu),
    ("precision", lambda f, p: f.precision == p.precision),
    ("gpus", lambda f, p: f.gpus == p.gpus),
    ("sequence", _same_sequence),
    ("batch", lambda f, p: f.batch is None or f.batch == p.batch),
)


def matches(
    *,
    kind: str,
    model: str,
    size: str,
    task: str,
    phase: int | None,
    seq_len: int | None,
    system: str | None,
    gpus: int,
    precision: str,
    batch: int,
    metric: str,
    gpu: str | None = None,
    mem_len: int | None = None,
) -> list[Published]:
    """The published figures this point is comparable with (usually none or one).

    `system`/`gpu` are the preset's (system_of_preset, gpu_of_preset); `gpu=None` skips the GPU
    test, so a DGX-1 point then matches 16 GB and 32 GB figures alike. For Transformer-XL,
    `seq_len` is tgt_len and `mem_len` must be given.
    """
    point = _point(**locals())
    return [f for f in figures() if all(test(f, point) for _, test in _TESTS)]


def no_match_note(
    *,
    kind: str,
    model: str,
    size: str,
    task: str,
    phase: int | None,
    seq_len: int | None,
    system: str | None,
    gpus: int,
    precision: str,
    batch: int,
    metric: str,
    gpu: str | None = None,
    mem_len: int | None = None,
) -> str:
    """One line: 'no published figure for <what>: <why> (published figures exist for: ...)'."""
    point = _point(**locals())
    left, everything = list(figures()), figures()
    for name, test in _TESTS:
        kept = [f for f in left if test(f, point)]
        if not kept:
            break
        if name == "what":
            everything = tuple(kept)
        left = kept
    else:
        raise ValueError(f"published figures match {_what(point)}: {', '.join(f.id for f in left)}")
    if name == "what":
        why = f"NVIDIA published no {_metric_words(point.metric)} figure for this"
        exist = _dedupe(map(_what_published, everything))
    else:
        why = _why(name, point, left)
        exist = _dedupe(map(_where_published, everything))
    return (
        f"no published figure for {_what(point)}: {why} "
        f"(published figures exist for: {', '.join(exist)})"
    )


def _why(name: str, point: _Point, left: list[Published]) -> str:
    if name == "system" and point.system is None:
        return "no --preset given, so the system is unknown"
    if name == "system":
        return f"NVIDIA published none on {point.system}"
    if name == "gpu":
        return f"NVIDIA published none on {point.system} with {point.gpu}"
    if name == "precision":
        return f"NVIDIA published none in {point.precision} on {point.system}"
    if name == "gpus":
        counts = _dedupe(str(f.gpus) for f in left)
        return f"NVIDIA published this for {' or '.join(counts)} GPU(s), not {point.gpus}"
    if name == "sequence":
        return f"NVIDIA published this only at {' or '.join(_dedupe(map(_seq_text, left)))}"
    batches = _dedupe(str(f.batch) for f in left)
    return f"NVIDIA's batch per GPU is {' or '.join(batches)}, not {point.batch}"


def _what(point: _Point) -> str:
    if point.model == "transformer-xl":
        seq = f"tgt {point.seq_len}, mem {point.mem_len}"
    else:
        seq = f"seq {point.seq_len}" + (f", phase {point.phase}" if point.phase else "")
    metric = "" if point.metric == "throughput" else f" {_metric_words(point.metric)}"
    system = point.system or "an unknown system"
    return (
        f"{point.model}-{point.size} {point.task} {point.kind}{metric} ({seq}) on {system} "
        f"x{point.gpus}, {point.precision}, batch {point.batch}/GPU"
    )


def _where_published(figure: Published) -> str:
    names = [
        name
        for name, system, gpu, precision in _shipped_presets()
        if (system, gpu, precision) == (figure.system, figure.gpu, figure.precision)
    ]
    where = "/".join(names) or f"{figure.system} {figure.gpu} {figure.precision}"
    phase = f" phase {figure.phase}" if figure.phase else ""
    batch = "any batch" if figure.batch is None else f"batch {figure.batch}"
    return f"{where} x{figure.gpus}{phase} {batch}"


def _what_published(figure: Published) -> str:
    metric = "" if figure.metric == "throughput" else f" {_metric_words(figure.metric)}"
    return f"{figure.model}-{figure.size} {figure.task} {figure.kind}{metric}"


def _seq_text(figure: Published) -> str:
    if figure.model == "transformer-xl":
        return f"tgt {figure.tgt_len} / mem {figure.mem_len}"
    return f"seq {figure.seq_len}" + (f" (phase {figure.phase})" if figure.phase else "")


def _metric_words(metric: str) -> str:
    return metric.replace("_", " ").replace("avg", "average")


def _dedupe(items) -> list[str]:
    return list(dict.fromkeys(items))


def _num(x: float) -> str:
    """285 -> '285', 227502 -> '227,502', 21854.7 -> '21,854.7': 3 decimals at most."""
    x = round(float(x), 3)
    return f"{int(x):,}" if x.is_integer() else f"{x:,}"
