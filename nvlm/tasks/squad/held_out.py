"""SQuAD dev-set figures while fine-tuning (`nvlm finetune --task squad --eval-data DEV
--set train.eval_every=N`, or `--eval-each-epoch`): rank 0 scores the dev file every N steps
and after the last step through the training loop's hook, with what `nvlm eval --task squad`
computes (same features, decoder, null threshold and official scoring), no files written."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from nvlm.tasks.held_out import held_out_every

# The official script's figures (v1.1: exact_match, f1; v2.0: the rest) in %; v2.0's best
# no-answer thresholds are score differences. Its question counts are not logged.
SCORES = ("exact_match", "exact", "f1", "HasAns_exact", "HasAns_f1", "NoAns_exact",
          "NoAns_f1", "best_exact", "best_f1")  # fmt: skip
EVAL_UNITS = {**dict.fromkeys(SCORES, "%"), "best_exact_thresh": "1", "best_f1_thresh": "1"}


def with_held_out_dev(spec, cfg, scorer, *, examples: int):
    """`spec` scoring `data.eval_data` every `train.eval_every` steps or each epoch
    (`train.eval_each_epoch`), and after the last step; `spec` itself when neither is set
    (the dev set is then evaluated after training, outside the loop). `scorer(path)` gives
    the `() -> {figure: value}` of the dev file `path` (`task.dev_scorer`)."""
    every = held_out_every(
        cfg, examples, refusal="--eval-each-epoch / train.eval_every evaluate a dev set while "
        "training: pass --eval-data DEV",
    )  # fmt: skip
    if every is None:
        return spec
    score = scorer(Path(cfg.data.eval_data))
    # v1.1 scores exact_match and f1 only: the figures train.keep_best may name.
    v1 = cfg.data.squad_version == "1.1"
    units = {k: u for k, u in EVAL_UNITS.items() if not v1 or k in ("exact_match", "f1")}
    return dataclasses.replace(spec, evaluate=score, eval_every=every, eval_units=units)
