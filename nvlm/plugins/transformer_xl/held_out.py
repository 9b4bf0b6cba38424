"""Perplexity on a valid split while Transformer-XL trains (the reference's eval_interval):

    nvlm pretrain --model transformer-xl --data wt103 --eval-data wt103 \
      --set train.eval_every=1000

Rank 0 evaluates the `valid` split of `data.eval_data` (an `nvlm data lm` directory; without
--eval-data, the training directory's own valid split when train.eval_every is set) every
`train.eval_every` steps and after the last step, with the settings `nvlm eval --task lm`
takes for this run (the preset's eval stage: tgt_len, mem_len, clamp_len, same_length, batch),
so the last figures are those `nvlm eval --split valid` reports for the final checkpoint.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from nvlm.errors import UserError

# The figures `nvlm eval --task lm` reports that a training log keeps, with their units.
EVAL_UNITS = {"loss": "nats", "ppl": "1", "bpt": "bits/token", "bpc": "bits/character"}


def eval_config(plugin, cfg):
    """The config `nvlm eval --task lm --init RUN` resolves for a run trained with `cfg`: the
    architecture of the run, the rest from its preset's eval stage (X1's settings without a
    preset), as `language_model.resolve_inference_config` does for a finished run."""
    from nvlm.plugins.transformer_xl.language_model import X1_EVAL
    from nvlm.resolve import resolve_training_config

    fixed = {f"model.{k}": v for k, v in cfg.model.architecture().items()}
    fixed["model.size"] = cfg.model.size
    eval_cfg, _ = resolve_training_config(
        plugin, stage=plugin.eval_stage, preset=cfg.preset, data=None, init=None,
        config_file=None, sets=[] if cfg.preset else list(X1_EVAL), flags=fixed,
    )  # fmt: skip
    return eval_cfg


def held_out_directory(cfg, data: Path) -> Path | None:
    """The directory whose valid split is evaluated: --eval-data, else (train.eval_every set)
    the training directory when it has a valid split; None: no evaluation while training."""
    from nvlm.data.lm.corpus import read_lm_directory
    from nvlm.report import info

    if cfg.data.eval_data is not None:
        return Path(cfg.data.eval_data)
    if not cfg.train.eval_every:
        return None
    if "valid" not in read_lm_directory(Path(data)).manifest["splits"]:
        raise UserError(
            f"train.eval_every evaluates a valid split and {data} has none: pass --eval-data "
            "LMDIR (an nvlm data lm directory with --valid)"
        )
    info(f"train.eval_every: evaluating the valid split of {data} (no --eval-data given)")
    return Path(data)


def with_held_out_valid(plugin, cfg, model, spec, data: Path, *, init: str | None):
    """`spec` evaluating perplexity on the valid split of the held-out directory (see
    `held_out_directory`), logged as eval_loss/eval_ppl/eval_bpt/eval_bpc. Nothing the run
    trains with changes: the evaluation reads the weights with its own memories (the training
    SegmentMemory is not touched), runs without dropout, and puts back the two attention
    settings it borrows for the eval stage (clamp_len, same_length)."""
    from nvlm.data.lm.corpus import read_lm_directory
    from nvlm.models.transformer_xl.evaluation import evaluate_stream

    directory = held_out_directory(cfg, data)
    if directory is None:
        return spec
    lm = read_lm_directory(directory)
    lm.split_info("valid")  # one line when there is none
    if init:
        plugin.check_vocab(lm, init)
    else:
        trained = read_lm_directory(Path(data))
        if lm.vocab_sha256 != trained.vocab_sha256:
            raise UserError(
                f"--eval-data {directory} was built with another vocabulary than --data "
                f"{data} (rebuild it with: nvlm data lm ... --vocab {trained.vocab_path})"
            )
    ids, chars = lm.load("valid"), lm.vocab().char_lengths()
    ev = eval_config(plugin, cfg)

    def held_out() -> dict[str, float]:
        saved = model.clamp_len, model.same_length
        model.clamp_len, model.same_length = ev.model.clamp_len, ev.model.same_length
        try:
            result = evaluate_stream(
                model, ids, batch_size=ev.data.eval_batch_size, tgt_len=ev.data.seq_len,
                mem_len=ev.model.mem_len, char_lengths=chars, xla=ev.train.xla,
            )  # fmt: skip
        finally:
            model.clamp_len, model.same_length = saved
        return {k: float(result[k]) for k in EVAL_UNITS}

    every = cfg.train.eval_every or spec.total_steps or cfg.train.steps
    return dataclasses.replace(
        spec, evaluate=held_out, eval_every=every, eval_units=dict(EVAL_UNITS)
    )
