"""`nvlm eval --model electra --task mlm`: replaced token detection over held-out shards."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

from nvlm.models.electra.pretraining_losses import pretraining_losses
from nvlm.models.encoder.shard_eval import sum_over_parts

# What one batch adds up (`step`'s keys).
SUMS = ("gen_xent", "gen_hits", "same", "mlm_count", "disc_xent", "disc_hits", "tokens", "tp",
        "predicted", "replaced", "sequences")  # fmt: skip


def evaluate_rtd(cfg, model, parts, total: int, data: Path, progress=None, world=None) -> dict:
    """Every sequence of `parts` once through `model` (an `ElectraPretrainer`, dropout off).

    The masks and samples are keyed by each sequence's index in the set (`example_positions`,
    see `ElectraPretrainer`): two evaluations of the same checkpoint give the same figures,
    whatever the batch size, XLA or not, and whatever state the model's seed generator is in.
    Sums are accumulated and divided at the end, so the figures are exact over the whole set,
    not means of batch means. With `world`, the batches are dealt out over its ranks.
    """
    weights = dict(
        generator_weight=cfg.model.generator_weight,
        discriminator_weight=cfg.model.discriminator_weight,
    )

    @tf.function(reduce_retracing=True, jit_compile=bool(cfg.train.xla))
    def step(batch):
        out = pretraining_losses(model(batch, training=False), **weights)
        count, tokens = out["mlm_count"], out["token_count"]
        return {
            "gen_xent": out["gen_loss"] * count,
            "gen_hits": out["gen_acc"] * count,
            "same": out["sampled_eq_original"] * count,
            "mlm_count": count,
            "disc_xent": out["disc_loss"] * tokens,
            "disc_hits": out["disc_acc"] * tokens,
            "tokens": tokens,
            "tp": out["rtd_true_positives"],
            "predicted": out["rtd_predicted"],
            "replaced": out["rtd_replaced"],
            "sequences": tf.cast(tf.shape(batch["input_ids"])[0], tf.float32),
        }

    numbered, first = [], 0
    for part in parts:
        numbered.append(_Numbered(part, first))
        first += len(part)
    totals, elapsed = sum_over_parts(step, numbered, cfg.data.eval_batch_size, total, progress,
                                     world=world, keys=SUMS)  # fmt: skip

    def ratio(a: str, b: str) -> float:
        return totals[a] / max(totals[b], 1.0)

    return {
        "task": "mlm",
        "data": str(data),
        "sequences": int(totals["sequences"]),
        "masked_tokens": int(totals["mlm_count"]),
        "gen_loss": ratio("gen_xent", "mlm_count"),
        "gen_acc": ratio("gen_hits", "mlm_count"),
        "sampled_eq_original": ratio("same", "mlm_count"),
        "disc_loss": ratio("disc_xent", "tokens"),
        "disc_acc": ratio("disc_hits", "tokens"),
        "disc_baseline_acc": 1.0 - ratio("replaced", "tokens"),
        "disc_precision": ratio("tp", "predicted"),
        "disc_recall": ratio("tp", "replaced"),
        "time_s": elapsed,
        "seq_per_s": totals["sequences"] / max(elapsed, 1e-9),
    }


class _Numbered:
    """A part whose rows also carry `example_positions`: their index in the whole set."""

    def __init__(self, part, first: int) -> None:
        self.part, self.first = part, first

    def __len__(self) -> int:
        return len(self.part)

    def read(self, start: int, stop: int) -> dict[str, np.ndarray]:
        rows = dict(self.part.read(start, stop))
        rows["example_positions"] = np.arange(self.first + start, self.first + stop)
        return rows
