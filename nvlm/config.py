"""Typed run configuration: frozen dataclasses, ONE merge order, validation, config.yaml.

Merge order (DESIGN.md), lowest to highest:

    dataclass defaults -> model size preset -> hardware preset (model, stage) -> --config FILE
    -> --set key=value -> explicit flags

The size preset is picked by the FINAL `model.size` (read from every layer first), then applied
underneath the hardware preset, so `--set model.size=tiny` on a preset that sets a hidden size
keeps the preset's value. Changing `train.gpus` away from the preset's count re-derives the
preset's accumulation (and a per-GPU lr) so the global batch stays put; `nvlm.resolve` merges
the layers and says so in its notes. The resolved config is written to RUN/config.yaml; a child
process reads only that file.

    res = nvlm.resolve.resolve("bert", "pretrain_phase1", preset="dgx1-16g-amp")
    write(res.config, run_dir)          # later: load(run_dir / CONFIG)
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import operator
import types
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple, Union, get_args, get_origin, get_type_hints

import yaml

from nvlm import outputs
from nvlm.errors import UserError
from nvlm.registry import section_key
from nvlm.run_dir import CONFIG


def _f(default: Any, **bounds: float) -> Any:
    """A dataclass field with range bounds (ge/gt/le/lt) that validation enforces."""
    return field(default=default, metadata={"bounds": bounds})


@dataclass(frozen=True)
class TrainConfig:
    steps: int = _f(1000, ge=1)  # optimizer steps; `epochs`, when set, takes precedence
    epochs: float | None = _f(None, gt=0)
    batch_size: int = _f(8, ge=1)  # per-GPU micro-batch
    accumulation: int = _f(1, ge=1)
    lr: float = _f(1e-4, gt=0)
    lr_per_gpu: bool = False  # BERT TF2 recipe: effective lr = lr x gpus
    warmup_steps: int = _f(0, ge=0)
    warmup_proportion: float | None = _f(None, ge=0, lt=1)
    optimizer: Literal["lamb", "adamw"] = "lamb"
    beta1: float = _f(0.9, ge=0, lt=1)
    beta2: float = _f(0.999, ge=0, lt=1)
    epsilon: float = _f(1e-6, gt=0)
    weight_decay: float = _f(0.01, ge=0)
    clip_norm: float = _f(1.0, ge=0)  # global-norm clipping; 0 turns it off
    schedule: Literal["poly", "cosine", "constant"] = "poly"
    decay_power: float = _f(1.0, gt=0)
    min_lr_ratio: float = _f(0.0, ge=0, le=1)
    layer_decay: float = _f(1.0, gt=0, le=1)  # layer-wise lr decay (ELECTRA SQuAD uses 0.8)
    precision: Literal["fp32", "tf32", "amp", "bf16"] = "fp32"
    xla: bool = False
    seed: int = _f(42, ge=0)
    checkpoint_every: int = _f(500, ge=1)
    keep_checkpoints: int = _f(3, ge=1)
    log_every: int = _f(10, ge=1)
    # Held-out evaluation while training (fine-tuning with --eval-data): every N steps, or at
    # the end of each epoch; 0 / false: only after the last step. docs/classification.md.
    eval_every: int = _f(0, ge=0)
    eval_each_epoch: bool = False
    # Keep the checkpoint with the best held-out figure METRIC (an eval figure without its
    # "eval_" prefix, e.g. mlm_loss, ppl, f1) under RUN/best/; None: no best checkpoint.
    keep_best: str | None = None
    # Several ranks: each evaluates its share of the held-out set and the sums are added up
    # (BERT/ELECTRA pretraining); false: rank 0 evaluates it all while the others wait.
    eval_shared: bool = True
    # How token-level losses are normalised (docs/distributed.md): "step_tokens" divides each
    # micro-batch's summed loss by the target tokens (or examples) of the whole optimizer step
    # over all micro-batches and ranks, so a step does not depend on how its examples are
    # split; "micro_batch" is the reference recipes' mean per micro-batch, then averaged.
    loss_normalization: Literal["step_tokens", "micro_batch"] = "step_tokens"
    allreduce_fp16: bool = False
    gpus: int = _f(1, ge=1)  # data-parallel processes (GPUs, or CPU processes)


@dataclass(frozen=True)
class DataConfig:
    seq_len: int = _f(128, ge=1)  # tokens per sequence (Transformer-XL: tgt_len)
    max_predictions: int = _f(20, ge=1)
    masked_lm_prob: float = _f(0.15, gt=0, lt=1)
    shuffle_buffer: int = _f(10000, ge=0)
    doc_stride: int = _f(128, ge=1)
    max_query_len: int = _f(64, ge=1)
    eval_batch_size: int = _f(8, ge=1)
    squad_version: Literal["1.1", "2.0"] = "1.1"  # SQuAD fine-tuning: 2.0 adds no-answer
    # Classification (stage "classify"): the GLUE task whose layout and metrics the data has
    # (None: a labelled JSONL/CSV/TSV read by the field names below; docs/classification.md).
    glue_task: str | None = None
    text_field: str = "text"
    pair_field: str | None = None  # None: "text_pair" when the file has it
    label_field: str = "label"
    # The held-out set evaluated while training (train.eval_every, train.eval_each_epoch):
    # recorded here so that every launched rank finds it; None: no evaluation while training.
    eval_data: str | None = None
    # Before training, check each data file against its manifest: "size" (byte size and HDF5
    # layout, no data read) or "full" (also sha256: reads every byte). docs/training.md.
    verify: Literal["size", "full"] = "size"


@dataclass(frozen=True)
class ModelConfig:
    """Base of every model's config. Plugins subclass it (frozen, every field with a default)."""

    size: str = "base"
    dropout: float = _f(0.1, ge=0, lt=1)

    def validate(self, run: RunConfig) -> None:
        """Per-model checks on the whole run (e.g. a seq_len range); raise UserError."""


@dataclass(frozen=True)
class RunConfig:
    model_name: str
    stage: str
    preset: str | None
    model: ModelConfig
    train: TrainConfig
    data: DataConfig

    @property
    def global_batch(self) -> int:
        """Sequences per optimizer step: micro-batch x accumulation x GPUs."""
        return self.train.batch_size * self.train.accumulation * self.train.gpus

    @property
    def effective_lr(self) -> float:
        return self.train.lr * self.train.gpus if self.train.lr_per_gpu else self.train.lr


class Resolved(NamedTuple):
    config: RunConfig
    notes: list[str]  # human-readable, for the CLI to print (re-derivations, odd choices)
    provenance: dict[str, str]  # dotted key -> the layer that set it


class _ModelSpec(NamedTuple):
    name: str
    config_cls: type[ModelConfig]
    sizes: dict[str, dict[str, Any]]


_MODELS: dict[str, _ModelSpec] = {}
META_KEYS = ("model_name", "stage", "preset")  # top-level keys of a dumped config.yaml
_SIZES = ("tiny", "small", "base", "large")
CUSTOM_SIZE = "custom"  # architecture given key by key (e.g. an imported checkpoint): no preset


def model_key(name: str) -> str:
    """'transformer-xl', 'Transformer_XL' -> 'transformer_xl' (the key used in preset files;
    the one rule is `nvlm.registry.section_key`)."""
    return section_key(name)


def register_model(
    name: str, config_cls: type[ModelConfig], sizes: Mapping[str, Mapping[str, Any]]
) -> None:
    """Register a model's config class and its size presets ({"tiny": {field: value}, ...}).

    The class should subclass ModelConfig (range bounds, the validate() hook); any frozen
    dataclass with `size` and `dropout` fields is accepted. Registering a name again replaces it.
    """
    names = (
        {f.name for f in dataclasses.fields(config_cls)}
        if dataclasses.is_dataclass(config_cls)
        else set()
    )
    if not {"size", "dropout"} <= names:
        raise TypeError(f"{config_cls!r} must be a dataclass with size and dropout fields")
    for size, values in sizes.items():
        check_layer({f"model.{k}": v for k, v in values.items()}, config_cls, f"size {size!r}")
    _MODELS[model_key(name)] = _ModelSpec(name, config_cls, {k: dict(v) for k, v in sizes.items()})


def registered_models() -> list[str]:
    return sorted(spec.name for spec in _MODELS.values())


def model_config_cls(name: str) -> type[ModelConfig] | None:
    """The registered config class of a model, or None (no plugin import is attempted)."""
    spec = _MODELS.get(model_key(name))
    return spec.config_cls if spec else None


def model_spec(name: str) -> _ModelSpec:
    key = model_key(name)
    if key not in _MODELS:
        # Plugins register on import; load the entry point of that name if one is installed.
        from nvlm import registry

        plugin = registry.plugins().get(registry.canonical(name))
        if plugin is not None and key not in _MODELS:
            register_model(plugin.name, plugin.config_cls, plugin.sizes)
    if key not in _MODELS:
        known = ", ".join(registered_models()) or "none installed"
        raise UserError(f"unknown model {name!r} (available: {known})")
    return _MODELS[key]


# --- validation of one key ------------------------------------------------------------------


@functools.cache
def _hints(cls: type) -> dict[str, tuple[Any, dict[str, float]]]:
    """Field -> (type, bounds); a model class not derived from ModelConfig inherits its bounds."""
    types_, shared = get_type_hints(cls), {f.name: f for f in dataclasses.fields(ModelConfig)}
    out = {}
    for f in dataclasses.fields(cls):
        bounds = f.metadata.get("bounds") or shared.get(f.name, f).metadata.get("bounds", {})
        out[f.name] = (types_[f.name], bounds)
    return out


def _coerce(path: str, value: Any, tp: Any) -> Any:
    """Check one value against its field type; YAML strings such as "1e-4" are parsed."""
    origin, args = get_origin(tp), get_args(tp)
    if origin in (Union, types.UnionType):  # only `X | None` is used in configs
        return None if value is None else _coerce(path, value, args[0])
    if value is None:
        raise UserError(f"{path} must not be empty (give it a value, e.g. --set {path}=...)")
    if origin is Literal:
        if value in args and isinstance(value, str):
            return value
        raise UserError(f"{path}={value!r} is not one of {', '.join(map(str, args))}")
    names = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}
    bad = UserError(f"{path}={value!r} is not {names.get(tp, 'a list')}")
    if tp is bool:
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if not isinstance(value, bool):
            raise bad
    elif tp in (int, float):
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise bad
        if tp is int and isinstance(value, int):
            return value
        try:  # PyYAML reads 1e-4 and 1e4 (no dot) as strings
            number = float(value)
        except ValueError:
            raise bad from None
        if not math.isfinite(number) or (tp is int and not number.is_integer()):
            raise bad
        return tp(number)
    elif tp is str and not isinstance(value, str):
        raise bad
    elif origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise bad
        items = [_coerce(f"{path}[{i}]", v, args[0]) if args else v for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    return value


_OPS = {"ge": operator.ge, "gt": operator.gt, "le": operator.le, "lt": operator.lt}
_SYMBOLS = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}


def check_range(path: str, value: float, **bounds: float) -> None:
    """Raise the standard one-line error when value breaks a bound (ge/gt/le/lt)."""
    for name, limit in bounds.items():
        if not _OPS[name](value, limit):
            raise UserError(f"{path}={value:g} must be {_SYMBOLS[name]} {limit:g}")


_SECTIONS: dict[str, type] = {"model": ModelConfig, "train": TrainConfig, "data": DataConfig}


def _section_cls(section: str, model_cls: type[ModelConfig]) -> type:
    return model_cls if section == "model" else _SECTIONS[section]


def check_layer(
    flat: Mapping[str, Any],
    model_cls: type[ModelConfig],
    where: str,
    *,
    lenient_model: bool = False,
) -> dict[str, Any]:
    """Check keys, types and ranges of one layer of dotted keys; return the coerced values.

    lenient_model lets unknown model.* keys through (a preset naming a plugin not yet loaded).
    """
    out: dict[str, Any] = {}
    for path, value in flat.items():
        section, _, name = path.partition(".")
        if section not in _SECTIONS or not name:
            owners = [s for s in _SECTIONS if path in _hints(_section_cls(s, model_cls))]
            hint = f"; did you mean '{owners[0]}.{path}'?" if owners else ""
            raise UserError(
                f"unknown config key '{path}' in {where}{hint} (keys are section.name with "
                f"sections {', '.join(sorted(_SECTIONS))})"
            )
        hints = _hints(_section_cls(section, model_cls))
        if name not in hints:
            if lenient_model and section == "model":
                out[path] = value  # the model's plugin is not loaded: nvlm.resolve checks it later
                continue
            guess = difflib.get_close_matches(name, hints, n=1)
            hint = f"; did you mean '{section}.{guess[0]}'?" if guess else ""
            raise UserError(
                f"unknown config key '{path}'{hint} (allowed in {section}: {', '.join(sorted(hints))})"
            )
        tp, bounds = hints[name]
        value = _coerce(path, value, tp)
        if value is not None and bounds:
            check_range(path, value, **bounds)
        out[path] = value
    return out


def flatten(tree: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Nested ({train: {lr: 1}}) or dotted ({train.lr: 1}) keys -> {"train.lr": 1}."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        key = str(key)
        if isinstance(value, Mapping) and "." not in key:
            for name, inner in value.items():
                flat[f"{key}.{name}"] = inner
        elif "." in key or key not in _SECTIONS:
            flat[key] = value
        else:
            raise UserError(f"config section '{key}' in {where} must be a mapping of keys")
    return flat


def parse_sets(sets: Iterable[str]) -> dict[str, Any]:
    """--set key=value pairs; values are YAML scalars (1e-4, true, 128, null)."""
    flat: dict[str, Any] = {}
    for item in sets:
        key, eq, text = item.partition("=")
        if not eq or not key.strip():
            raise UserError(f"--set expects key=value, got {item!r} (e.g. --set train.lr=1e-4)")
        try:
            flat[key.strip()] = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError:
            flat[key.strip()] = text  # not a scalar YAML understands: keep the text
    return flat


def read_yaml(path: Path, what: str) -> Mapping[str, Any]:
    """A config or preset file: a mapping of config keys, or one `UserError`."""
    tree = outputs.read_yaml(path, what)
    if tree is None:
        return {}
    if not isinstance(tree, Mapping):
        raise UserError(f"{what} {path} must hold a mapping of config keys")
    return tree


# --- the merge -------------------------------------------------------------------------------


def defaults_of(model_cls: type[ModelConfig]) -> dict[str, Any]:
    fields = {s: dataclasses.fields(_section_cls(s, model_cls)) for s in _SECTIONS}
    return {f"{s}.{f.name}": f.default for s, fs in fields.items() for f in fs}


def check_size(spec: _ModelSpec, size: str, where: str) -> dict[str, Any]:
    """The field values of a size preset; models without registered sizes accept the 4 names."""
    allowed = [*(spec.sizes or _SIZES), CUSTOM_SIZE]
    if size not in allowed:
        raise UserError(
            f"{where}model.size={size!r} is not a size of {spec.name} (available: {', '.join(allowed)})"
        )
    return spec.sizes.get(size, {})


def build(spec: _ModelSpec, stage: str, preset: str | None, flat: Mapping[str, Any]) -> RunConfig:
    values: dict[str, dict[str, Any]] = {s: {} for s in _SECTIONS}
    for path, value in flat.items():
        section, _, name = path.partition(".")
        values[section][name] = value
    built = {s: _section_cls(s, spec.config_cls)(**v) for s, v in values.items()}
    run = RunConfig(model_name=spec.name, stage=stage, preset=preset, **built)
    _check_invariants(run)
    if callable(hook := getattr(run.model, "validate", None)):
        hook(run)
    return run


def _check_invariants(run: RunConfig) -> None:
    t, d = run.train, run.data
    if t.warmup_proportion is not None and t.warmup_steps > 0:
        raise UserError(
            f"train.warmup_steps={t.warmup_steps} and train.warmup_proportion="
            f"{t.warmup_proportion:g} are both set (set train.warmup_steps=0 or "
            "train.warmup_proportion=null)"
        )
    # Only for models with masked-LM predictions (a Transformer-XL segment may be short).
    if d.max_predictions > d.seq_len and getattr(run.model, "uses_max_predictions", True):
        raise UserError(
            f"data.max_predictions={d.max_predictions} exceeds data.seq_len={d.seq_len} "
            "(lower data.max_predictions)"
        )
    if run.stage == "squad" and d.seq_len - d.max_query_len - 3 < d.doc_stride:
        # [CLS] query [SEP] doc [SEP]: the document window must be at least one stride long.
        raise UserError(
            f"data.seq_len={d.seq_len} leaves {d.seq_len - d.max_query_len - 3} document tokens "
            f"after a {d.max_query_len}-token query, fewer than data.doc_stride={d.doc_stride} "
            "(raise data.seq_len or lower data.doc_stride / data.max_query_len)"
        )


# --- config.yaml -----------------------------------------------------------------------------


def to_dict(cfg: RunConfig) -> dict[str, Any]:
    """Plain nested dict (lists for tuples) in the key order of the dataclasses."""

    tree: dict[str, Any] = {k: getattr(cfg, k) for k in META_KEYS}
    for section in _SECTIONS:
        obj = getattr(cfg, section)
        tree[section] = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
        tree[section] = {
            k: list(v) if isinstance(v, tuple) else v for k, v in tree[section].items()
        }
    return tree


def from_dict(tree: Mapping[str, Any], where: str = "config") -> RunConfig:
    """The inverse of to_dict, with the same validation as nvlm.resolve (no layering)."""
    missing = [k for k in ("model_name", "stage") if not tree.get(k)]
    if missing:
        raise UserError(f"{where} lacks {', '.join(missing)} (write it with nvlm.config.write)")
    spec = model_spec(str(tree["model_name"]))
    body = {k: v for k, v in tree.items() if k not in META_KEYS}
    flat = {
        **defaults_of(spec.config_cls),
        **check_layer(flatten(body, where), spec.config_cls, where),
    }
    check_size(spec, flat["model.size"], f"{where}: ")
    return build(spec, str(tree["stage"]), tree.get("preset"), flat)


def dump(cfg: RunConfig) -> str:
    t = cfg.train
    head = (
        "# nvlm resolved run configuration: the only input of a child process (nvlm.config.load)\n"
        f"# global batch = {t.batch_size} x {t.accumulation} x {t.gpus} GPUs = "
        f"{cfg.global_batch:,} sequences; effective lr = {cfg.effective_lr:g}\n"
    )
    return head + yaml.safe_dump(to_dict(cfg), sort_keys=False, default_flow_style=False)


def write(cfg: RunConfig, run_dir: str | Path) -> Path:
    """Write RUN/config.yaml atomically (a reader never sees half a file)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    from nvlm.outputs import write_text

    target = run_dir / CONFIG
    write_text(target, dump(cfg))
    return target


def load(path: str | Path) -> RunConfig:
    """Read a config.yaml written by `write` (or a run directory holding one)."""
    path = Path(path)
    if path.is_dir():
        path = path / CONFIG
    return from_dict(read_yaml(path, "run config"), str(path))
