"""Losses and metrics of BERT pretraining, computed from the pretrainer's outputs and a batch."""

from __future__ import annotations

from keras import ops


def pretraining_losses(outputs: dict, batch: dict) -> dict:
    """Masked-LM and next-sentence losses and accuracies, in float32 under any policy.

    Args:
        outputs: `BertPretrainer` outputs, `mlm_logits` `[B, P, V]` and `nsp_logits` `[B, 2]`.
        batch: `masked_lm_ids` `[B, P]`, `next_sentence_labels` `[B]` or `[B, 1]`, and either
            `masked_lm_weights` `[B, P]` or `masked_lm_positions` `[B, P]`; without weights,
            a prediction slot is real when its position is not 0 (position 0 is [CLS], never
            masked; the shards pad unused slots with 0).

    Returns:
        `loss` = `mlm_loss + nsp_loss` (what BERT minimises), `mlm_loss` (mean cross-entropy over
        the real predictions), `mlm_accuracy`, `nsp_loss`, `nsp_accuracy`, `mlm_count`
        (the number of real predictions, to weight averages across steps), and the sums behind
        the losses, `mlm_total` and `nsp_total` (over `mlm_count` predictions and the batch's
        sequences: what a step normalised by its tokens adds up), all float32 scalars.

    Example:
    >>> import numpy as np
    >>> outputs = {"mlm_logits": np.zeros((1, 2, 4), "float32"),
    ...            "nsp_logits": np.zeros((1, 2), "float32")}
    >>> batch = {"masked_lm_ids": np.array([[3, 0]]), "masked_lm_positions": np.array([[5, 0]]),
    ...          "next_sentence_labels": np.array([1])}
    >>> round(float(pretraining_losses(outputs, batch)["mlm_loss"]), 4)  # log(4)
    1.3863
    """
    mlm_logits = ops.cast(outputs["mlm_logits"], "float32")
    nsp_logits = ops.cast(outputs["nsp_logits"], "float32")
    ids = ops.cast(batch["masked_lm_ids"], "int32")
    if "masked_lm_weights" in batch:
        weights = ops.cast(batch["masked_lm_weights"], "float32")
    else:
        weights = ops.cast(ops.not_equal(batch["masked_lm_positions"], 0), "float32")
    labels = ops.reshape(ops.cast(batch["next_sentence_labels"], "int32"), (-1,))

    mlm_xent = ops.sparse_categorical_crossentropy(ids, mlm_logits, from_logits=True)
    count = ops.sum(weights)
    denominator = ops.maximum(count, 1.0)  # a batch with no prediction gives loss 0, not NaN
    mlm_total = ops.sum(mlm_xent * weights)
    mlm_loss = mlm_total / denominator
    mlm_hits = ops.cast(ops.equal(ops.argmax(mlm_logits, axis=-1), ids), "float32")
    mlm_accuracy = ops.sum(mlm_hits * weights) / denominator

    nsp_xent = ops.sparse_categorical_crossentropy(labels, nsp_logits, from_logits=True)
    nsp_loss = ops.mean(nsp_xent)
    nsp_accuracy = ops.mean(ops.cast(ops.equal(ops.argmax(nsp_logits, axis=-1), labels), "float32"))
    return {
        "loss": mlm_loss + nsp_loss,
        "mlm_loss": mlm_loss,
        "mlm_accuracy": mlm_accuracy,
        "nsp_loss": nsp_loss,
        "nsp_accuracy": nsp_accuracy,
        "mlm_count": count,
        "mlm_total": mlm_total,
        "nsp_total": ops.sum(nsp_xent),
    }


def prediction_counts(batch: dict) -> dict:
    """The targets of each loss in `batch`, known before the forward pass: `mlm_loss` = the real
    predictions (as `pretraining_losses` counts them), `nsp_loss` = the sequences."""
    if "masked_lm_weights" in batch:
        weights = ops.cast(batch["masked_lm_weights"], "float32")
    else:
        weights = ops.cast(ops.not_equal(batch["masked_lm_positions"], 0), "float32")
    sequences = ops.cast(ops.shape(batch["masked_lm_ids"])[0], "float32")
    return {"mlm_loss": ops.sum(weights), "nsp_loss": sequences}
