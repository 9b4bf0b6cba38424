"""`--init SRC` for BERT: an nvlm run or checkpoint, a Hugging Face directory or a Google TF1
checkpoint, detected automatically. The architecture (and vocab) come from the source."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nvlm.errors import UserError
from nvlm.run_dir import TOKENIZER_CONFIG, VOCAB

# BertConfig fields that describe the architecture (the rest are training choices).
ARCHITECTURE = (
    "vocab_size",
    "hidden_size",
    "num_layers",
    "num_heads",
    "intermediate_size",
    "max_position",
    "type_vocab_size",
    "layer_norm_eps",
)


def _kind(src: str | Path) -> str:
    from nvlm.convert import detect_source

    return detect_source(src)


def source_config(src: str | Path):
    """The BertConfig described by `src`."""
    from nvlm import config as config_mod
    from nvlm.train.restore import run_dir_of

    kind = _kind(src)
    if kind == "nvlm":
        cfg = config_mod.load(run_dir_of(src))
        if config_mod.model_key(cfg.model_name) != "bert":
            raise UserError(f"--init {src} is a {cfg.model_name} run, not a BERT one")
        return cfg.model
    from nvlm.convert import read_checkpoint

    return read_checkpoint(src).config


def init_model_values(src: str | Path) -> dict[str, Any]:
    """The architecture `src` fixes, as dotted keys; with a classification head (an nvlm
    classify run, an HF `BertForSequenceClassification`, a Google run_classifier.py checkpoint)
    also its `model.num_labels` and `model.labels` (the HF `id2label`; Google's are unnamed)."""
    from nvlm import config as config_mod
    from nvlm.train.restore import run_dir_of

    head: dict[str, Any] = {}
    if _kind(src) == "nvlm":
        model = source_config(src)
        if config_mod.load(run_dir_of(src)).stage == "classify":
            head = {"model.num_labels": model.num_labels, "model.labels": model.labels}
    else:
        from nvlm.convert import read_checkpoint

        ckpt = read_checkpoint(src)  # once: the weights tell whether it has a head
        model = ckpt.config
        if ckpt.num_labels is not None:
            head = {"model.num_labels": ckpt.num_labels, "model.labels": ckpt.labels}
    values = {f"model.{k}": getattr(model, k) for k in ARCHITECTURE}
    values["model.size"] = model.size
    return {**values, **head}


def source_vocab(src: str | Path) -> Path | None:
    from nvlm.train.restore import run_dir_of

    kind = _kind(src)
    if kind == "nvlm":
        p = run_dir_of(src) / VOCAB
        return p if p.exists() else None
    from nvlm.convert import read_checkpoint

    vocab = read_checkpoint(src).vocab
    return Path(vocab) if vocab else None


def load_into(model, cfg, src: str | Path, task: str) -> list[str]:
    """Load `src` into the built `model`; return warnings (heads legitimately absent)."""
    kind = _kind(src)
    if kind != "nvlm":
        from nvlm.convert import load_checkpoint

        return load_checkpoint(model, src)
    from nvlm import config as config_mod
    from nvlm.convert.bert_weights import assign_weights, export_weights
    from nvlm.models.bert.build import build
    from nvlm.train.restore import restore_model, run_dir_of

    src_cfg = config_mod.load(run_dir_of(src))
    src_task = "pretrain" if src_cfg.stage.startswith("pretrain") else src_cfg.stage
    source_model = build(src_cfg, src_task)
    prefix = restore_model(source_model, src)
    return assign_weights(model, export_weights(source_model), prefix)


def source_text_settings(src: str | Path) -> tuple[Path | None, bool]:
    """(vocab.txt, lowercase) of a source: nvlm runs and HF directories record the casing in
    tokenizer_config.json (`do_lower_case`); Google checkpoints don't (uncased assumed)."""
    import json

    from nvlm.train.restore import run_dir_of

    vocab = source_vocab(src)
    kind = _kind(src)
    base = run_dir_of(src) if kind == "nvlm" else (vocab.parent if vocab else None)
    lowercase = True
    if base is not None and (base / TOKENIZER_CONFIG).exists():
        lowercase = bool(
            json.loads((base / TOKENIZER_CONFIG).read_text()).get("do_lower_case", True)
        )
    return vocab, lowercase
