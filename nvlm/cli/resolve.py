"""Config resolution shared by the training commands: the DESIGN.md merge order, plus the
values that the data (vocab size, sequence length) and `--init` (architecture) fix."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nvlm import config as config_mod
from nvlm.errors import UserError

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
    first = config_mod.resolve(
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

    final = config_mod.resolve(
        plugin.name,
        stage,
        preset=preset,
        config_file=config_file,
        sets=sets,
        flags={**flags, **fixed},
    )
    # More processes than this one: nvlm.cli.launching starts them (or refuses, one line).
    return final.config, notes


def _get(cfg, dotted: str) -> Any:
    section, _, name = dotted.partition(".")
    return getattr(getattr(cfg, section), name)
