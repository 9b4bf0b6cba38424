"""Config resolution: every layer merged in the one order (DESIGN.md), plus what the data and
`--init` fix, for every command and library caller.

    dataclass defaults -> model size preset -> hardware preset (model, stage) -> --config FILE
    -> --set key=value -> explicit flags

`nvlm.config` owns the typed config (classes, validation, config.yaml); `nvlm.presets` owns the
preset files and checks them against those classes; this module is the one place that uses both,
so neither imports the other's user.

    res = resolve("bert", "pretrain_phase1", preset="dgx1-16g-amp", flags={"train.gpus": 4})
    for note in res.notes: print(note)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from nvlm import config as config_mod
from nvlm import presets
from nvlm.errors import UserError


def resolve(
    model_name: str,
    stage: str,
    *,
    preset: str | None = None,
    config_file: str | Path | None = None,
    sets: Iterable[str] = (),
    flags: Mapping[str, Any] | None = None,
) -> config_mod.Resolved:
    """Merge every layer in the one order, validate, and return the frozen run config."""
    spec = config_mod.model_spec(model_name)
    cls = spec.config_cls
    higher: list[tuple[str, dict[str, Any]]] = []
    if config_file is not None:
        tree = dict(config_mod.read_yaml(Path(config_file), "config file"))
        # A dumped config.yaml (the launcher's child) carries its model and stage: they must match.
        expected = {"model_name": config_mod.model_key(spec.name), "stage": stage}
        for meta in config_mod.META_KEYS:
            value = tree.pop(meta, None)
            got = config_mod.model_key(str(value)) if meta == "model_name" else value
            if value is not None and meta in expected and got != expected[meta]:
                raise UserError(
                    f"config file {config_file} is for {meta} {value!r}, not {expected[meta]!r}"
                )
        layer = config_mod.check_layer(
            config_mod.flatten(tree, str(config_file)), cls, str(config_file)
        )
        higher.append((f"--config {config_file}", layer))
    higher.append(("--set", config_mod.check_layer(config_mod.parse_sets(sets), cls, "--set")))
    given = {k: v for k, v in (flags or {}).items() if v is not None}
    higher.append(("flag", config_mod.check_layer(given, cls, "flags")))
    top = {k: v for _, layer in higher for k, v in layer.items()}

    notes: list[str] = []
    preset_layer, preset_label, preset_global = {}, "", None
    if preset is not None:
        pl = presets.layer_for(
            preset, spec.name, stage, gpus=top.get("train.gpus"), overridden=top.keys()
        )
        preset_layer = config_mod.check_layer(pl.values, cls, pl.label)
        preset_label, preset_global, notes = pl.label, pl.global_batch, list(pl.notes)

    size = top.get("model.size", preset_layer.get("model.size", cls.size))
    size_layer = {f"model.{k}": v for k, v in config_mod.check_size(spec, size, "").items()}

    layers = [("default", config_mod.defaults_of(cls)), (f"size {size}", size_layer)]
    layers += [(preset_label, preset_layer)] + higher
    merged: dict[str, Any] = {}
    provenance: dict[str, str] = {}
    for label, layer in layers:
        merged.update(layer)
        provenance.update(dict.fromkeys(layer, label))
    config = config_mod.build(spec, stage, preset, merged)

    t = config.train
    if preset_global is not None and config.global_batch != preset_global:
        notes.append(
            f"global batch {config.global_batch:,} ({t.batch_size} x {t.accumulation} x "
            f"{t.gpus} GPUs) differs from the preset's {preset_global:,}"
        )
    if t.epochs is None and t.warmup_proportion is None and t.warmup_steps >= t.steps:
        notes.append(
            f"train.warmup_steps={t.warmup_steps} >= train.steps={t.steps}: "
            "the learning rate never leaves warm-up"
        )
    return config_mod.Resolved(config, notes, provenance)


USER_LAYERS = ("--set", "flag", "--config")


def _user_set(provenance: Mapping[str, str], key: str) -> bool:
    return any(provenance.get(key, "").startswith(layer) for layer in USER_LAYERS)


def resolve_training_config(
    plugin,
    *,
    stage: str,
    preset: str | None,
    data: Path | None,
    init: str | None,
    config_file: Path | None,
    sets: list[str],
    flags: dict[str, Any],
) -> tuple[Any, list[str]]:
    """Resolve the run config; `data` is a shard directory whose properties the config must
    follow (None for tasks that read other data, e.g. SQuAD JSON)."""
    first = resolve(
        plugin.name, stage, preset=preset, config_file=config_file, sets=sets, flags=flags
    )
    cfg, prov = first.config, first.provenance
    notes = list(first.notes)

    fixed: dict[str, Any] = {}
    if init:
        # The architecture comes from the checkpoint; a conflicting --set is a mistake.
        for key, value in plugin.init_model_values(init).items():
            current = _get(cfg, key)
            if _user_set(prov, key) and current != value:
                raise UserError(
                    f"{key}={current!r} conflicts with --init {init}, which has "
                    f"{key}={value!r} (drop the override)"
                )
            fixed[key] = value
    data_values = plugin.data_overrides(data)[1] if data is not None else {}
    for key, value in data_values.items():
        current = fixed.get(key, _get(cfg, key))
        if key == "model.vocab_size" and key in fixed and current != value:
            raise UserError(
                f"the shards in {data} were made with a vocab of {value} ids (padded) but "
                f"--init {init} has vocab_size {current} (make the shards with the checkpoint's "
                "vocab.txt)"
            )
        if current != value:
            if _user_set(prov, key):
                raise UserError(
                    f"{key}={current!r} does not match the shards in {data}, which "
                    f"have {key}={value!r} (drop the override or use other shards)"
                )
            if key != "model.vocab_size":
                notes.append(f"{key}={value} from the shards in {data} (the preset says {current})")
        fixed[key] = value

    final = resolve(
        plugin.name,
        stage,
        preset=preset,
        config_file=config_file,
        sets=sets,
        flags={**flags, **fixed},
    )
    notes += _derived_notes(first.config, final.config, fixed, prov)
    # More processes than this one: nvlm.launch.training starts them (or refuses, one line).
    return final.config, notes


def _derived_notes(before, after, fixed: Mapping[str, Any], prov: Mapping[str, str]) -> list[str]:
    """Model settings that the config derives from what the data or --init fixed (e.g.
    Transformer-XL's default cutoffs from the vocabulary) and that changed with it."""
    import dataclasses

    causes = [f"{k}={v}" for k, v in fixed.items() if _get(before, k) != v]
    notes = []
    for f in dataclasses.fields(after.model):
        key = f"model.{f.name}"
        old, new = getattr(before.model, f.name), getattr(after.model, f.name)
        if old != new and key not in fixed and not _user_set(prov, key) and causes:
            shown = list(new) if isinstance(new, tuple) else new
            was = list(old) if isinstance(old, tuple) else old
            notes.append(
                f"{key}={shown} derived from {', '.join(causes)} (not {was}; set {key} to choose)"
            )
    return notes


def _get(cfg, dotted: str) -> Any:
    section, _, name = dotted.partition(".")
    return getattr(getattr(cfg, section), name)
