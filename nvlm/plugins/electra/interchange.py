"""`nvlm convert --model electra`: an nvlm run <-> Hugging Face ELECTRA directories.

A pretraining run holds both models: `--part discriminator` / `--part generator` writes one
(ElectraForPreTraining / ElectraForMaskedLM), no `--part` writes both as DST/discriminator and
DST/generator (a pair, what RUN/hf holds after pretraining). A fine-tuned run is written as
its discriminator with the SQuAD head, or as ElectraForSequenceClassification with the run's
`model.labels` as id2label. The round trip is lossless (the same float32 arrays).
"""

from __future__ import annotations

from pathlib import Path

from nvlm import resolve as resolve_mod
from nvlm.errors import UserError
from nvlm.run_dir import CONFIG

PARTS = ("discriminator", "generator")


def task_of_stage(stage: str) -> str:
    return "pretrain" if stage.startswith("pretrain") else stage


def load_run_model(src: str | Path):
    """(config, model) of an nvlm ELECTRA run or checkpoint, weights restored, in float32."""
    from nvlm.models.electra.build import build
    from nvlm.plugins.electra.init import _run_config
    from nvlm.train.precision import set_precision
    from nvlm.train.restore import restore_model

    cfg = _run_config(src)
    set_precision("fp32")
    model = build(cfg, task_of_stage(cfg.stage))
    restore_model(model, src)
    return cfg, model


def export_run_model(model, cfg, run: Path, dst: Path, part: str, overwrite: bool = True):
    """Write `part` of a built model as an HF directory with the run's vocab and casing."""
    from nvlm.convert.electra_hf import export_part, write_hf_dir
    from nvlm.plugins.electra.init import source_text_settings

    tensors, config, warnings = export_part(model, cfg.model, part)
    vocab, lowercase = source_text_settings(run) if (run / CONFIG).exists() else (None, None)
    out = write_hf_dir(tensors, config, dst, vocab=vocab, lowercase=lowercase, overwrite=overwrite)
    return out, warnings


def to_hf(src, dst, *, part: str | None = None, overwrite: bool = False):
    from nvlm.convert.staging import require_empty
    from nvlm.plugins.electra.init import NVLM, source_kind
    from nvlm.train.restore import run_dir_of

    if part is not None and part not in PARTS:
        raise UserError(
            f"--part {part!r} is not a part of ELECTRA (use discriminator or generator)"
        )
    if source_kind(src) != NVLM:
        raise UserError(f"{src} is already a Hugging Face directory (convert it --to nvlm)")
    cfg, model = load_run_model(src)
    run, dst = run_dir_of(src), Path(dst)
    if part is not None or not hasattr(model, "generator"):
        return export_run_model(model, cfg, run, dst, part or "discriminator", overwrite)
    require_empty(dst, overwrite)
    warnings = []
    for name in PARTS:
        warnings += export_run_model(model, cfg, run, dst / name, name, overwrite=True)[1]
    return dst, warnings


def to_nvlm(src, dst, *, overwrite: bool = False, sets=()):
    """An HF ELECTRA directory (or a pair) -> an nvlm run directory usable as --init; `sets`:
    --set overrides of its config (e.g. data.seq_len)."""
    import keras

    from nvlm.convert.staging import require_empty, write_run_dir
    from nvlm.models.electra.build import build
    from nvlm.plugins.electra.init import (
        NVLM,
        PAIR,
        init_model_values,
        load_into,
        source_kind,
        source_text_settings,
    )
    from nvlm.plugins.encoder.interchange import imported_data_settings
    from nvlm.train.precision import set_precision

    kind = source_kind(src)
    if kind == NVLM:
        raise UserError(f"{src} is already an nvlm run (convert it --to hf)")
    dst = Path(dst)
    require_empty(dst, overwrite)
    values = init_model_values(src)
    if kind == PAIR:
        stage = "pretrain_phase1"
    elif "model.qa_head" in values:
        stage = "squad"
    elif "model.num_labels" in values:
        stage = "classify"
    else:
        stage = "features"
    task = task_of_stage(stage)
    values.update(imported_data_settings(stage, values["model.max_position"], sets))
    set_precision("fp32")
    cfg = resolve_mod.resolve("electra", stage, sets=sets, flags=values).config
    model = build(cfg, task)
    warnings = load_into(model, cfg, src, task)
    vocab, lowercase = source_text_settings(src)
    write_run_dir(cfg, model, dst, vocab, lowercase)
    keras.backend.clear_session()
    return dst, warnings
