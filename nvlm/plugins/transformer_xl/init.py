"""`--init SRC` for Transformer-XL: an nvlm run directory or one of its checkpoints.

The architecture (`ARCHITECTURE` fields) and the vocabulary (RUN/vocab.txt) come from the run;
memory and evaluation settings do not (they belong to the stage being run).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nvlm.errors import UserError
from nvlm.run_dir import VOCAB


def source_config(src: str | Path):
    from nvlm import config as config_mod
    from nvlm.train.restore import is_nvlm_source, run_dir_of

    if not is_nvlm_source(src):
        raise UserError(
            f"--init {src} is not an nvlm run or checkpoint (Transformer-XL starts from its own "
            "runs: a directory made by nvlm pretrain --model transformer-xl)"
        )
    cfg = config_mod.load(run_dir_of(src))
    if config_mod.model_key(cfg.model_name) != "transformer_xl":
        raise UserError(f"--init {src} is a {cfg.model_name} run, not a Transformer-XL one")
    return cfg


def init_model_values(src: str | Path) -> dict[str, Any]:
    model = source_config(src).model
    values = {f"model.{k}": v for k, v in model.architecture().items()}
    values["model.size"] = model.size
    return values


def source_vocab(src: str | Path) -> Path:
    from nvlm.train.restore import run_dir_of

    source_config(src)
    path = run_dir_of(src) / VOCAB
    if not path.is_file():
        raise UserError(f"--init {src} has no vocab.txt (was it trained by this nvlm?)")
    return path


def load_into(model, src: str | Path) -> list[str]:
    """Copy the trained weights of `src` into `model` (same architecture). The run is rebuilt
    as it was trained and restored first: its dropout settings decide which seed-generator
    states the checkpoint holds, and those need not match the model being loaded."""
    from nvlm.models.transformer_xl.transformer_xl import TransformerXL
    from nvlm.train.restore import restore_model

    source = TransformerXL(**source_config(src).model.to_model_kwargs())
    prefix = restore_model(source, src)
    pairs = list(zip(model.trainable_variables, source.trainable_variables, strict=False))
    if len(model.trainable_variables) != len(source.trainable_variables) or any(
        tuple(a.shape) != tuple(b.shape) for a, b in pairs
    ):
        raise UserError(f"checkpoint {prefix} does not match this Transformer-XL architecture")
    for target, value in pairs:
        target.assign(value.value)
    return []
