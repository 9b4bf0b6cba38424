"""Losses and metrics of ELECTRA pretraining, from `ElectraPretrainer` outputs."""

from __future__ import annotations

import tensorflow as tf


def _ratio(num, den):
    return num / tf.maximum(den, 1.0)  # an empty denominator gives 0, never NaN


def pretraining_losses(
    outputs: dict, generator_weight: float = 1.0, discriminator_weight: float = 50.0
) -> dict:
    """`loss = generator_weight x MLM + discriminator_weight x RTD` and the metrics, float32.

    MLM: mean cross-entropy of the generator over the selected positions (weights 1).
    RTD: mean sigmoid cross-entropy of the discriminator over ALL real tokens (input_mask 1;
    padding never counts), label 1 = replaced (Clark et al. 2020, equation 2, with the
    weight lambda = 50 of section 3.1 / appendix).

    Returns (all scalars):
        `loss`, `gen_loss`, `gen_acc` (argmax = original at the selected positions),
        `disc_loss`, `disc_acc` (threshold 0 on the logit, over real tokens),
        `disc_precision` / `disc_recall` (on replaced tokens), `sampled_eq_original` (share
        of selected positions where the sample IS the original: no replacement there),
        `replaced_share` (replaced tokens / real tokens) and `disc_baseline_acc` (the
        accuracy of answering "original" everywhere = 1 - replaced_share), and the counts
        behind them (`mlm_count`, `token_count`, `rtd_true_positives`, `rtd_predicted`,
        `rtd_replaced`) to aggregate over many batches exactly, and the sums behind the two
        losses, `gen_total` (over `mlm_count`) and `disc_total` (over `token_count`).
    """
    logits = tf.cast(outputs["mlm_logits"], tf.float32)
    ids = tf.cast(outputs["masked_lm_ids"], tf.int32)
    weights = tf.cast(outputs["masked_lm_weights"], tf.float32)
    count = tf.reduce_sum(weights)
    xent = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=ids, logits=logits)
    gen_total = tf.reduce_sum(xent * weights)
    gen_loss = _ratio(gen_total, count)
    hits = tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), ids), tf.float32)
    same = tf.cast(tf.equal(tf.cast(outputs["sampled_ids"], tf.int32), ids), tf.float32)

    rtd_logits = tf.cast(outputs["rtd_logits"], tf.float32)
    labels = tf.cast(outputs["rtd_labels"], tf.float32)
    mask = tf.cast(outputs["input_mask"], tf.float32)
    tokens = tf.reduce_sum(mask)
    bce = tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=rtd_logits)
    disc_total = tf.reduce_sum(bce * mask)
    disc_loss = _ratio(disc_total, tokens)
    predicted = tf.cast(rtd_logits > 0.0, tf.float32) * mask
    correct = tf.cast(tf.equal(predicted, labels), tf.float32) * mask
    true_pos = tf.reduce_sum(predicted * labels)
    replaced = tf.reduce_sum(labels)
    return {
        "loss": generator_weight * gen_loss + discriminator_weight * disc_loss,
        "gen_loss": gen_loss,
        "gen_acc": _ratio(tf.reduce_sum(hits * weights), count),
        "disc_loss": disc_loss,
        "disc_acc": _ratio(tf.reduce_sum(correct), tokens),
        "disc_precision": _ratio(true_pos, tf.reduce_sum(predicted)),
        "disc_recall": _ratio(true_pos, replaced),
        "sampled_eq_original": _ratio(tf.reduce_sum(same * weights), count),
        "replaced_share": _ratio(replaced, tokens),
        "disc_baseline_acc": 1.0 - _ratio(replaced, tokens),
        "mlm_count": count,
        "token_count": tokens,
        "rtd_true_positives": true_pos,
        "rtd_predicted": tf.reduce_sum(predicted),
        "rtd_replaced": replaced,
        "gen_total": gen_total,
        "disc_total": disc_total,
    }
