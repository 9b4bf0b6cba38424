"""How a step's loss is normalised: by the target tokens of the whole step, or per micro-batch.

A model's loss function returns either a scalar (a mean over the micro-batch's rows, every
micro-batch holding the same number of rows: SQuAD, classification, Transformer-XL's segments)
or token-level `Term`s: each a SUM over this micro-batch's targets with their COUNT (BERT's
masked tokens, ELECTRA's selected and real tokens, whose numbers vary between examples).

`train.loss_normalization`:
- "step_tokens": each term is divided by its count over the whole optimizer step, all
  micro-batches and all ranks together, counted before the step (`TrainSpec.counts`); the
  gradients of the micro-batches and ranks are then summed. The step's gradient is that of the
  mean over every target of the step, whatever the split of its examples over ranks and
  micro-batches.
- "micro_batch": each term is divided by its count in the micro-batch and the micro-batch
  losses are averaged over micro-batches and ranks (NVIDIA's and Google's recipes): a mean of
  means, which weights a target of a micro-batch with few targets more.

Both give the same result when every micro-batch has the same counts; a scalar loss is one
such case, so it is divided by the number of micro-batches of the step in either mode.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import tensorflow as tf


@dataclass(frozen=True)
class Term:
    """One loss of a micro-batch, summed over its targets.

    `weight` multiplies the term's mean (ELECTRA's 50 x RTD); `logged` names it in the logs
    with its exact step mean (under the key the loss function gives it)."""

    total: tf.Tensor  # the loss summed over the targets of this micro-batch
    count: tf.Tensor  # the number of targets (tokens, sequences) of this micro-batch
    weight: float = 1.0
    logged: bool = True


Terms = Mapping[str, Term]


def is_terms(loss) -> bool:
    return isinstance(loss, Mapping)


def micro_batch_mean(terms: Terms) -> dict[str, tf.Tensor]:
    """Each term's mean over this micro-batch's targets (0 without targets, never NaN)."""
    return {
        k: tf.cast(t.total, tf.float32) / tf.maximum(tf.cast(t.count, tf.float32), 1.0)
        for k, t in terms.items()
    }


def step_share(terms: Terms, denominators: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
    """This micro-batch's share of each term's mean over the whole step: its sum divided by the
    step's count (all micro-batches, all ranks). The shares of a step add up to the mean."""
    return {
        k: tf.cast(t.total, tf.float32) / tf.maximum(tf.cast(denominators[k], tf.float32), 1.0)
        for k, t in terms.items()
    }


def weighted_sum(terms: Terms, values: Mapping[str, tf.Tensor]) -> tf.Tensor:
    return tf.add_n([terms[k].weight * values[k] for k in terms])
