"""`nvlm convert` for BERT: an nvlm run <-> a Hugging Face directory (Google TF1 checkpoints
convert too). The round trip is lossless: the same float32 arrays come back."""

from __future__ import annotations

from pathlib import Path

import keras

from nvlm import config as config_mod
from nvlm import resolve as resolve_mod
from nvlm.errors import UserError
from nvlm.run_dir import TOKENIZER_CONFIG

# Which task a stage's model is, and which stage an imported model gets.
STAGE_TASK = {"squad": "squad", "classify": "classify", "features": "features"}


def task_of_stage(stage: str) -> str:
    return "pretrain" if stage.startswith("pretrain") else STAGE_TASK.get(stage, stage)


def load_run_model(src: str | Path):
    """(config, model) of an nvlm run or checkpoint, weights restored."""
    from nvlm.models.bert.build import build
    from nvlm.train.precision import set_precision
    from nvlm.train.restore import restore_model, run_dir_of

    cfg = config_mod.load(run_dir_of(src))
    if cfg.model_name != "bert":
        # Building BERT from another model's config fails deep in Keras: say what it is.
        raise UserError(
            f"{src} is an nvlm {cfg.model_name} run, not BERT (add --model {cfg.model_name})"
        )
    set_precision("fp32")
    model = build(cfg, task_of_stage(cfg.stage))
    restore_model(model, src)
    return cfg, model


def to_hf(src: str | Path, dst: str | Path, *, overwrite: bool = False) -> tuple[Path, list[str]]:
    """An nvlm run, HF directory or Google checkpoint -> an HF directory: weights, config.json
    and the tokenizer files with the source's vocab and casing (convert/hf.py). A classify
    run becomes a `BertForSequenceClassification` whose id2label is its `model.labels`."""
    from nvlm.convert import (
        detect_source,
        load_checkpoint,
        model_config,
        model_for,
        read_checkpoint,
    )
    from nvlm.convert.hf import write_hf_dir
    from nvlm.plugins.bert.init import source_text_settings

    if detect_source(src) == "nvlm":
        cfg, model = load_run_model(src)
        vocab, lowercase = source_text_settings(src)
        warnings, labels = [], cfg.model.labels
    else:  # read once: source_text_settings would read the weights a second time
        model = model_for(ckpt := read_checkpoint(src))
        warnings, labels = load_checkpoint(model, ckpt), ckpt.labels
        vocab = Path(ckpt.vocab) if ckpt.vocab else None
        lowercase = _recorded_casing(vocab.parent / TOKENIZER_CONFIG) if vocab else None
    out = write_hf_dir(
        model, model_config(model), Path(dst), vocab, overwrite, lowercase, labels=labels
    )
    return out, warnings


def _recorded_casing(path: Path) -> bool | None:
    """`do_lower_case` of an HF tokenizer_config.json; None where there is none (a Google
    checkpoint; the export then says uncased, as nvlm reads such sources)."""
    import json

    try:
        value = json.loads(path.read_bytes()).get("do_lower_case")
    except (OSError, ValueError, AttributeError):  # absent, not JSON, not an object
        return None
    return None if value is None else bool(value)


def to_nvlm(
    src: str | Path, dst: str | Path, *, overwrite: bool = False, sets=()
) -> tuple[Path, list[str]]:
    """An HF directory or Google checkpoint -> an nvlm run directory usable as --init; `sets`:
    --set overrides of its config (e.g. data.seq_len)."""
    from nvlm.convert import detect_source, load_checkpoint, model_for, read_checkpoint
    from nvlm.convert.bert_weights import CLASSIFY, MLM, NSP, SQUAD
    from nvlm.convert.staging import require_empty, write_run_dir
    from nvlm.plugins.bert.init import ARCHITECTURE, source_text_settings
    from nvlm.plugins.encoder.interchange import imported_data_settings
    from nvlm.train.precision import set_precision

    if detect_source(src) == "nvlm":
        raise UserError(f"{src} is already an nvlm run (convert it --to hf)")
    dst = Path(dst)
    require_empty(dst, overwrite)
    set_precision("fp32")
    ckpt = read_checkpoint(src)
    model = model_for(ckpt)
    warnings = load_checkpoint(model, ckpt)
    groups = ckpt.groups
    stage = "pretrain_phase1" if groups & {MLM, NSP} else "squad" if SQUAD in groups else "features"
    values = {f"model.{k}": getattr(ckpt.config, k) for k in ARCHITECTURE}
    values["model.size"] = ckpt.config.size
    if CLASSIFY in groups and not groups & {MLM, NSP, SQUAD}:
        stage = "classify"
        values.update({"model.num_labels": ckpt.num_labels, "model.labels": ckpt.labels})
    values.update(imported_data_settings(stage, ckpt.config.max_position, sets))
    cfg = resolve_mod.resolve("bert", stage, sets=sets, flags=values).config
    vocab, lowercase = source_text_settings(src)
    write_run_dir(cfg, model, dst, vocab, lowercase)
    keras.backend.clear_session()
    return dst, warnings
