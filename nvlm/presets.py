"""Hardware presets: one YAML file per system+precision, per-model and per-stage sections.

A file holds `system:` (GPUs per node, GPU model and memory, precision, peak TFLOP/s for MFU) and
`models: {model: {stage: section}}`. A stage section is `gpus: N`, optionally `derived: true`
(numbers not published for that system, derived by the rule written next to them) and
`global_batch:` (checked: batch_size x accumulation x gpus), plus config keys under `train:`,
`data:`, `model:`, validated against nvlm.config. Every stage trains in `system.precision`.

Shipped files live in nvlm/resources/presets/ (the repo's presets/ links there). Directories in
NVLM_PRESET_PATH (os.pathsep-separated) are searched first, so a user file can shadow a shipped
one; `--preset ./my.yaml` loads a file directly.

    preset = load("dgx1-16g-amp")
    stage = preset.stage("bert", "pretrain_phase1")        # Stage; .section is the raw mapping
    section, notes = rederive(stage.section, gpus=32)      # keep the global batch on 32 GPUs
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, get_args, get_type_hints

from nvlm import config
from nvlm.config import DataConfig, ModelConfig, TrainConfig
from nvlm.errors import UserError

BUILTIN_DIR = Path(__file__).parent / "resources" / "presets"
PATH_ENV = "NVLM_PRESET_PATH"
PRECISIONS = get_args(get_type_hints(TrainConfig)["precision"])  # fp32, tf32, amp, bf16
_STAGE_KEYS = ("gpus", "derived", "global_batch", "train", "data", "model")
_SYSTEM_KEYS = ("name", "gpus_per_node", "gpu", "gpu_memory_gb", "precision", "peak_tflops")


@dataclass(frozen=True)
class System:
    name: str
    gpus_per_node: int
    gpu: str | None  # None for CPU presets
    gpu_memory_gb: float | None
    precision: str
    peak_tflops: dict[str, float]  # dense peak per device, by precision name

    def peak(self, precision: str | None = None) -> float | None:
        """Peak TFLOP/s of one device for MFU (the preset's precision unless given)."""
        return self.peak_tflops.get(precision or self.precision)


@dataclass(frozen=True)
class Stage:
    model: str
    name: str
    section: dict[str, Any]  # {gpus, derived?, global_batch?, train: {...}, data: {...}, ...}

    @property
    def gpus(self) -> int:
        return self.section["gpus"]

    @property
    def derived(self) -> bool:
        return bool(self.section.get("derived", False))

    @property
    def global_batch(self) -> int:
        return global_batch(self.section)

    def get(self, dotted: str) -> Any:
        """A config value as this stage sets it, else the dataclass default."""
        section, _, name = dotted.partition(".")
        values = self.section.get(section, {})
        if name in values:
            return values[name]
        return getattr(
            {"train": TrainConfig, "data": DataConfig, "model": ModelConfig}[section], name
        )

    def summary(self) -> dict[str, Any]:
        """The figures `nvlm presets show` prints (steps is None when the stage counts epochs)."""
        lr, gpus, epochs = self.get("train.lr"), self.gpus, self.get("train.epochs")
        per_gpu = self.get("train.lr_per_gpu")
        return {
            "gpus": gpus,
            "batch_size": self.get("train.batch_size"),
            "accumulation": self.get("train.accumulation"),
            "global_batch": self.global_batch,
            "lr": lr,
            "lr_per_gpu": per_gpu,
            "effective_lr": _round(lr * gpus) if per_gpu else lr,
            "warmup_steps": self.get("train.warmup_steps"),
            "warmup_proportion": self.get("train.warmup_proportion"),
            "steps": None if epochs is not None else self.get("train.steps"),
            "epochs": epochs,
            "seq_len": self.get("data.seq_len"),
            "model_size": self.get("model.size"),
            "precision": self.get("train.precision"),
            "xla": self.get("train.xla"),
            "derived": self.derived,
            "config": {
                k: dict(self.section[k]) for k in ("train", "data", "model") if k in self.section
            },
        }


@dataclass(frozen=True)
class Preset:
    name: str
    path: Path
    system: System
    models: dict[str, dict[str, Stage]]  # keyed by config.model_key ("transformer_xl")

    def stage(self, model: str, stage: str) -> Stage:
        stages = self.models.get(config.model_key(model))
        if stages is None:
            raise UserError(
                f"preset {self.name} has no section for model {model!r} "
                f"(available: {', '.join(self.models)})"
            )
        if stage not in stages:
            raise UserError(
                f"preset {self.name} has no {config.model_key(model)}.{stage} section "
                f"(available stages: {', '.join(stages)})"
            )
        return stages[stage]


def search_dirs() -> list[Path]:
    """NVLM_PRESET_PATH directories first, then the shipped presets."""
    extra = [Path(p) for p in os.environ.get(PATH_ENV, "").split(os.pathsep) if p]
    return [*extra, BUILTIN_DIR]


def available() -> dict[str, Path]:
    """Preset name -> file; a name found in an earlier directory shadows later ones."""
    found: dict[str, Path] = {}
    for directory in search_dirs():
        for path in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]):
            found.setdefault(path.stem, path)
    return dict(sorted(found.items()))


def load(name_or_path: str | Path) -> Preset:
    """Load and validate a preset by name (see available()) or by path to a YAML file."""
    text = str(name_or_path)
    if text.endswith((".yaml", ".yml")) or os.sep in text or Path(text).is_file():
        path = Path(text)
        if not path.is_file():
            raise UserError(f"preset file {path} not found")
    else:
        names = available()
        if text not in names:
            raise UserError(
                f"unknown preset {text!r} (available: {', '.join(names)}; or give a path to a "
                f"YAML file, or add a directory to {PATH_ENV})"
            )
        path = names[text]
    return _parse(path, config.read_yaml(path, "preset file"))


def _parse(path: Path, tree: Mapping[str, Any]) -> Preset:
    def fail(key: str, message: str) -> UserError:
        return UserError(f"preset file {path}: {key}: {message}")

    for key in tree:
        if key not in ("system", "models"):
            raise fail(str(key), "unknown top-level key (allowed: models, system)")
    sys_tree = tree.get("system")
    if not isinstance(sys_tree, Mapping):
        raise fail("system", "missing or not a mapping (name, gpus_per_node, gpu, ...)")
    for key in _SYSTEM_KEYS:
        if key not in sys_tree:
            raise fail(f"system.{key}", f"missing (required: {', '.join(_SYSTEM_KEYS)})")
    for key in sys_tree:
        if key not in _SYSTEM_KEYS:
            raise fail(f"system.{key}", f"unknown key (allowed: {', '.join(_SYSTEM_KEYS)})")
    precision = sys_tree["precision"]
    if precision not in PRECISIONS:
        raise fail("system.precision", f"{precision!r} is not one of {', '.join(PRECISIONS)}")
    gpn = sys_tree["gpus_per_node"]
    if isinstance(gpn, bool) or not isinstance(gpn, int) or gpn < 1:
        raise fail("system.gpus_per_node", f"{gpn!r} is not a positive integer")
    peaks = sys_tree["peak_tflops"]
    if not isinstance(peaks, Mapping) or precision not in peaks:
        raise fail("system.peak_tflops", f"must map precisions to TFLOP/s, including {precision!r}")
    for key, value in peaks.items():
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if key not in PRECISIONS or not number or value <= 0:
            raise fail(
                f"system.peak_tflops.{key}",
                f"{value!r} is not a positive TFLOP/s figure of {', '.join(PRECISIONS)}",
            )
    system = System(
        name=str(sys_tree["name"]),
        gpus_per_node=gpn,
        gpu=None if sys_tree["gpu"] is None else str(sys_tree["gpu"]),
        gpu_memory_gb=sys_tree["gpu_memory_gb"],
        precision=precision,
        peak_tflops={k: float(v) for k, v in peaks.items()},
    )

    models_tree = tree.get("models")
    if not isinstance(models_tree, Mapping) or not models_tree:
        raise fail("models", "missing or empty (e.g. models: {bert: {pretrain_phase1: ...}})")
    models: dict[str, dict[str, Stage]] = {}
    for model, stages in models_tree.items():
        key = config.model_key(str(model))
        if not isinstance(stages, Mapping) or not stages:
            raise fail(f"models.{model}", "must map stage names to sections")
        models[key] = {}
        for stage, section in stages.items():
            where = f"models.{model}.{stage}"
            try:
                models[key][str(stage)] = Stage(
                    key, str(stage), _check_stage(section, key, precision)
                )
            except UserError as exc:
                raise fail(where, str(exc)) from None
    return Preset(path.stem, path, system, models)


def _check_stage(section: Any, model: str, precision: str) -> dict[str, Any]:
    """Validate one stage section; return it with coerced values and the system precision."""
    if not isinstance(section, Mapping):
        raise UserError("must be a mapping (gpus, train, data, ...)")
    for key in section:
        if key not in _STAGE_KEYS:
            raise UserError(f"unknown key {key!r} (allowed: {', '.join(sorted(_STAGE_KEYS))})")
    out: dict[str, Any] = {"gpus": _int(section.get("gpus"), "gpus")}
    if "derived" in section:
        if not isinstance(section["derived"], bool):
            raise UserError(f"derived={section['derived']!r} is not true or false")
        out["derived"] = section["derived"]
    tree = {k: section[k] for k in ("train", "data", "model") if k in section}
    if "gpus" in tree.get("train", {}):
        raise UserError("set the process count as the stage's gpus:, not train.gpus")
    cls = config.model_config_cls(model) or ModelConfig
    flat = config.check_layer(config.flatten(tree, "stage"), cls, "preset", lenient_model=True)
    if flat.setdefault("train.precision", precision) != precision:
        raise UserError(
            f"train.precision={flat['train.precision']!r} differs from system.precision "
            f"{precision!r} (one precision per preset file)"
        )
    for path, value in flat.items():
        section_name, _, name = path.partition(".")
        out.setdefault(section_name, {})[name] = value
    if "global_batch" in section:
        stated, actual = _int(section["global_batch"], "global_batch"), global_batch(out)
        if stated != actual:
            raise UserError(
                f"global_batch={stated:,} but batch_size x accumulation x gpus = {actual:,} "
                "(fix one of them)"
            )
        out["global_batch"] = stated
    return out


def _int(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UserError(f"{key}={value!r} must be a positive integer")
    return value


def global_batch(section: Mapping[str, Any]) -> int:
    train = section.get("train", {})
    micro = train.get("batch_size", TrainConfig.batch_size)
    return micro * train.get("accumulation", TrainConfig.accumulation) * section["gpus"]


def section_layer(section: Mapping[str, Any]) -> dict[str, Any]:
    """A stage section as a config layer of dotted keys (gpus becomes train.gpus)."""
    tree = {k: section[k] for k in ("train", "data", "model") if k in section}
    return {**config.flatten(tree, "preset"), "train.gpus": section["gpus"]}


def _round(x: float) -> float:
    return float(f"{x:.12g}")  # 7.5e-4 * 8 / 32 should print as 1.875e-4, not 1.8749999e-4


def fmt_lr(x: float) -> str:
    """7.5e-4 rather than 0.00075: how the recipes write learning rates."""
    mantissa, exponent = f"{x:.6e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"


def rederive(section: Mapping[str, Any], gpus: int) -> tuple[dict[str, Any], list[str]]:
    """The stage section for another process count, keeping its global batch.

    The micro-batch is memory-bound, so it never grows: keep it and change the accumulation when
    the global batch divides; otherwise take the smallest accumulation whose micro-batch fits.
    A per-GPU lr (BERT TF2: effective lr = lr x GPUs) is scaled so that lr x GPUs stays fixed,
    which reproduces NVIDIA's multi-node table; an absolute lr (ELECTRA, TXL) is unchanged.
    """
    if isinstance(gpus, bool) or not isinstance(gpus, int) or gpus < 1:
        raise UserError(f"train.gpus={gpus!r} must be a positive integer")
    old, train = section["gpus"], dict(section.get("train", {}))
    micro = train.get("batch_size", TrainConfig.batch_size)
    acc = train.get("accumulation", TrainConfig.accumulation)
    total = micro * acc * old
    if total % (gpus * micro) == 0:
        new_micro, new_acc = micro, total // (gpus * micro)
    else:
        fits = (
            a
            for a in range(1, total // gpus + 1)
            if total % (gpus * a) == 0 and total // (gpus * a) <= micro
        )
        new_acc = next(fits, 0)
        if not new_acc:
            raise UserError(
                f"the global batch {total:,} cannot be split over {gpus} GPUs with a micro-batch "
                f"of at most {micro} (choose one with --set train.batch_size=N "
                "--set train.accumulation=M)"
            )
        new_micro = total // (gpus * new_acc)
    train.update(batch_size=new_micro, accumulation=new_acc)
    what = f"accumulation {acc} -> {new_acc} keeps"
    if new_micro != micro:
        what = f"micro-batch {micro} -> {new_micro} and accumulation {acc} -> {new_acc} keep"
    note = f"{gpus} GPUs instead of the preset's {old}: {what} the global batch {total:,}"
    lr = train.get("lr", TrainConfig.lr)
    if train.get("lr_per_gpu", TrainConfig.lr_per_gpu):
        train["lr"] = _round(lr * old / gpus)
        effective = fmt_lr(_round(lr * old))
        note += (
            f"; per-GPU lr {fmt_lr(lr)} -> {fmt_lr(train['lr'])} keeps the effective lr {effective}"
        )
    else:
        note += f"; lr {fmt_lr(lr)} is absolute and stays"
    return {**section, "gpus": gpus, "derived": True, "train": train}, [note]


class PresetLayer(NamedTuple):
    values: dict[str, Any]  # dotted keys, for nvlm.resolve.resolve
    label: str  # provenance label
    notes: list[str]
    global_batch: int  # the preset's own global batch, before any re-derivation


def layer_for(
    preset: str | Path, model: str, stage: str, *, gpus: int | None, overridden: Collection[str]
) -> PresetLayer:
    """The preset's config layer for (model, stage), re-derived when `gpus` differs.

    `overridden` are the dotted keys set by higher layers: re-derivation notes are dropped when
    every value they describe is overridden anyway (e.g. a child reading RUN/config.yaml).
    """
    loaded = load(preset)
    section = published = loaded.stage(model, stage).section
    label, notes = f"preset {loaded.name}", []
    if gpus is not None and gpus != section["gpus"]:
        new, notes = rederive(section, gpus)
        changed = {f"train.{k}" for k, v in new["train"].items() if section["train"].get(k) != v}
        if changed <= set(overridden):
            notes = []
        section, label = new, f"{label} (re-derived for {gpus} GPUs)"
    return PresetLayer(section_layer(section), label, notes, global_batch(published))
