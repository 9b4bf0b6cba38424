"""The corruption step of replaced token detection: dynamic masking, Gumbel-max sampling from
the generator, and the discriminator's input and labels (Clark et al. 2020, section 2).

Every random draw takes a `keras.random.SeedGenerator`: the draws are stateless ops keyed by
the generator's state, a model variable that the training loop checkpoints, so a run is
deterministic and a resumed run draws exactly what the uninterrupted one would have.
"""

from __future__ import annotations

import keras
import tensorflow as tf

# Of the selected positions, this fraction shows [MASK] to the generator and the rest keep
# their original token (Google's ELECTRA pretrain_helpers.mask, kept by NVIDIA's TF2 port;
# unlike BERT's 80/10/10 there is no random-token case: the generator supplies those).
MASK_REPLACE_PROB = 0.85


def select_positions(
    input_ids, input_mask, *, max_predictions: int, mask_prob: float, excluded_ids, seed
):
    """Choose `round(mask_prob x candidates)` positions per sequence, at least 1 and at most
    `max_predictions`, uniformly without replacement among the real tokens that are not
    [CLS]/[SEP] (`excluded_ids`).

    Sampling without replacement is a top-k of uniform noise over the candidates (the
    Gumbel-top-k trick with equal weights). Unused slots get position 0 and weight 0, the
    layout of BERT's shards.

    Returns:
        positions int32 `[batch, max_predictions]`, weights float32 (1 = a real prediction).
    """
    ids = tf.cast(input_ids, tf.int32)
    candidates = tf.cast(input_mask, tf.bool)
    for token in excluded_ids:
        candidates &= tf.not_equal(ids, token)
    count = tf.reduce_sum(tf.cast(candidates, tf.float32), axis=-1)
    wanted = tf.clip_by_value(tf.round(count * mask_prob), 1.0, float(max_predictions))
    wanted = tf.cast(tf.minimum(wanted, count), tf.int32)  # a sequence of only specials: none
    noise = keras.random.uniform(tf.shape(ids), seed=seed)
    scores = tf.where(candidates, noise, -1.0)
    positions = tf.math.top_k(scores, k=max_predictions, sorted=True).indices
    weights = tf.sequence_mask(wanted, max_predictions, dtype=tf.float32)
    return positions * tf.cast(weights, tf.int32), weights


def position_mask(positions, weights, seq_len):
    """1.0 at the real selected positions of each sequence, `[batch, seq]` (positions are
    distinct, so the one-hot rows never overlap)."""
    hot = tf.one_hot(positions, seq_len, dtype=tf.float32) * weights[:, :, None]
    return tf.reduce_max(hot, axis=1)


def scatter_tokens(input_ids, positions, weights, tokens):
    """`input_ids` with `tokens[b, i]` written at `positions[b, i]` where `weights` is 1."""
    ids = tf.cast(input_ids, tf.int32)
    seq_len = tf.shape(ids)[1]
    hot = tf.one_hot(positions, seq_len, dtype=tf.int32) * tf.cast(weights, tf.int32)[:, :, None]
    written = tf.reduce_sum(hot * tf.cast(tokens, tf.int32)[:, :, None], axis=1)
    selected = tf.reduce_max(hot, axis=1) > 0
    return tf.where(selected, written, ids)


def mask_inputs(input_ids, positions, weights, *, mask_token_id: int, seed):
    """The generator's input: [MASK] at `MASK_REPLACE_PROB` of the selected positions."""
    draw = keras.random.uniform(tf.shape(positions), seed=seed)
    to_mask = weights * tf.cast(draw < MASK_REPLACE_PROB, tf.float32)
    return scatter_tokens(
        input_ids, positions, to_mask, tf.fill(tf.shape(positions), mask_token_id)
    )


def sample_tokens(logits, original_ids, *, temperature: float, disallow_correct: bool, seed):
    """One token per slot from softmax(logits / temperature), by Gumbel-max:
    argmax(logits / T + g) with g = -log(-log(u)), u ~ U(0, 1) (Gumbel 1954; Jang et al. 2017).

    The logits are cut from the graph (`stop_gradient`): the sample is discrete, and ELECTRA
    trains the generator by maximum likelihood only, never through the discriminator's loss.
    With `disallow_correct` the original token can not be drawn (its logit is -1e9).

    Returns:
        int32 `[batch, predictions]`.
    """
    logits = tf.stop_gradient(tf.cast(logits, tf.float32)) / temperature
    if disallow_correct:
        vocab = tf.shape(logits)[-1]
        logits += tf.one_hot(tf.cast(original_ids, tf.int32), vocab, dtype=tf.float32) * -1e9
    u = keras.random.uniform(tf.shape(logits), minval=1e-20, maxval=1.0, seed=seed)
    gumbel = -tf.math.log(-tf.math.log(u))
    return tf.argmax(logits + gumbel, axis=-1, output_type=tf.int32)
