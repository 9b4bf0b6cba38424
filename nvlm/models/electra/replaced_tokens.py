"""The corruption step of replaced token detection: dynamic masking, Gumbel-max sampling from
the generator, and the discriminator's input and labels (Clark et al. 2020, section 2).

Two sources of randomness:
- keyed by example (pretraining): `ExampleKeyedDraws` hashes (run seed, global stream position
  of the example, draw kind, slot). A row's masks and samples are then a function of the
  example alone, not of the batch it sits in: 1 rank x 8 rows, 2 ranks x 4 and 1 x 4 with
  accumulation 2 corrupt every example identically, so token-weighted losses agree across
  layouts; the position changes every epoch (dynamic masking); a resumed run redraws the same.
- a `keras.random.SeedGenerator` (callers without positions: tests, ad-hoc calls): stateless
  ops keyed by the generator's state, a model variable that the training loop checkpoints.
"""

from __future__ import annotations

import keras
import tensorflow as tf

# Of the selected positions, this fraction shows [MASK] to the generator and the rest keep
# their original token (Google's ELECTRA pretrain_helpers.mask, kept by NVIDIA's TF2 port;
# unlike BERT's 80/10/10 there is no random-token case: the generator supplies those).
MASK_REPLACE_PROB = 0.85

_LOW32 = 0xFFFFFFFF
# Draw kinds: one independent stream each per (example, index).
SELECT, MASK, SAMPLE = 1, 2, 3


def _mul32(x, c: int):
    """(x * c) mod 2**32 for x in [0, 2**32) in int64 without overflow: int64 multiplies exist
    on every device and under XLA (uint32 ones not everywhere), and the split keeps every
    product below 2**49, so no signed overflow (undefined in C++) is ever relied on."""
    lo = tf.bitwise.bitwise_and(x, 0xFFFF)
    hi = tf.bitwise.right_shift(x, 16)
    top = tf.bitwise.left_shift(tf.bitwise.bitwise_and(hi * c, 0xFFFF), 16)
    return tf.bitwise.bitwise_and(lo * c + top, _LOW32)


def _mix32(x):
    """A bijection of 32-bit words with strong avalanche (the "lowbias32" integer hash
    constants published by C. Wellons, 2018): each input bit flips each output bit with
    probability ~1/2, so consecutive counters give independent-looking words."""
    x = tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, 16))
    x = _mul32(x, 0x7FEB352D)
    x = tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, 15))
    x = _mul32(x, 0x846CA68B)
    return tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, 16))


class ExampleKeyedDraws:
    """Uniforms in (0, 1) that are a pure function of (run seed, example position, kind,
    index): a counter-based hash, no state, identical on every rank, eager or under XLA.

    The 64-bit position and the index are absorbed one 32-bit word at a time, with `_mix32`
    between (a sponge over a bijection): distinct keys give unrelated words.

    Args:
        run_seed: an int fixed for the run and the same on every rank (the config's seed,
            never a rank-offset generator state).
        example_positions: int `[batch]`, the global stream position of each row.
    """

    def __init__(self, run_seed: int, example_positions) -> None:
        self.run_seed = int(run_seed) & _LOW32
        pos = tf.cast(example_positions, tf.int64)
        self._row_lo = tf.bitwise.bitwise_and(pos, _LOW32)
        self._row_hi = tf.bitwise.bitwise_and(tf.bitwise.right_shift(pos, 32), _LOW32)

    def uniform(self, kind: int, count):
        """float32 `[batch, count]`: the draw of `kind` for slots 0..count-1 of each row."""
        start = _mix32(tf.constant(self.run_seed ^ (kind * 0x9E3779B9 & _LOW32), tf.int64))
        h = _mix32(tf.bitwise.bitwise_xor(start, self._row_lo))
        h = _mix32(tf.bitwise.bitwise_xor(h, self._row_hi))
        index = tf.range(tf.cast(count, tf.int64), dtype=tf.int64)
        h = _mix32(_mix32(tf.bitwise.bitwise_xor(h[:, None], index[None, :])))
        # 23 bits: (k + 0.5) / 2**23 is exact in float32 and never 0 or 1.
        k = tf.cast(tf.bitwise.right_shift(h, 9), tf.float32)
        return (k + 0.5) * (1.0 / (1 << 23))


def select_positions(
    input_ids, input_mask, *, max_predictions: int, mask_prob: float, excluded_ids, seed,
    draws: ExampleKeyedDraws | None = None,
):  # fmt: skip
    """Choose `round(mask_prob x candidates)` positions per sequence, at least 1 and at most
    `max_predictions`, uniformly without replacement among the real tokens that are not
    [CLS]/[SEP] (`excluded_ids`).

    Sampling without replacement is a top-k of uniform noise over the candidates (the
    Gumbel-top-k trick with equal weights). Unused slots get position 0 and weight 0, the
    layout of BERT's shards. The noise is keyed by sequence position (`draws`, when given),
    else drawn from `seed`. (A tie of two 23-bit keyed scores, ~1e-7 per pair, goes to the
    lower index: the same choice in every layout.)

    Returns:
        positions int32 `[batch, max_predictions]`, weights float32 (1 = a real prediction).
    """
    ids = tf.cast(input_ids, tf.int32)
    candidates = _candidates(ids, input_mask, excluded_ids)
    wanted = selection_counts(
        ids, input_mask, max_predictions=max_predictions, mask_prob=mask_prob,
        excluded_ids=excluded_ids,
    )  # fmt: skip
    if draws is None:
        noise = keras.random.uniform(tf.shape(ids), seed=seed)
    else:
        noise = draws.uniform(SELECT, tf.shape(ids)[1])
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


def mask_inputs(input_ids, positions, weights, *, mask_token_id: int, seed, draws=None):
    """The generator's input: [MASK] at `MASK_REPLACE_PROB` of the selected positions (one
    draw per prediction slot: from `draws` when given, else from `seed`)."""
    if draws is None:
        draw = keras.random.uniform(tf.shape(positions), seed=seed)
    else:
        draw = draws.uniform(MASK, tf.shape(positions)[1])
    to_mask = weights * tf.cast(draw < MASK_REPLACE_PROB, tf.float32)
    return scatter_tokens(
        input_ids, positions, to_mask, tf.fill(tf.shape(positions), mask_token_id)
    )


def sample_tokens(
    logits, original_ids, *, temperature: float, disallow_correct: bool, seed, draws=None
):
    """One token per slot from softmax(logits / temperature).

    Without `draws`, by Gumbel-max: argmax(logits / T + g) with g = -log(-log(u)),
    u ~ U(0, 1) (Gumbel 1954; Jang et al. 2017), u from `seed`.
    With `draws`, by inverse CDF with ONE keyed uniform per slot (`_inverse_cdf`): keyed
    Gumbel-max would need a hash and two logs per (slot, vocab id), several times the cost of
    the softmax and running sum that inverse CDF needs over the vocab; both are exact.

    The logits are cut from the graph (`stop_gradient`): the sample is discrete, and ELECTRA
    trains the generator by maximum likelihood only, never through the discriminator's loss.
    With `disallow_correct` the original token can not be drawn (its logit is -1e9).

    Returns:
        int32 `[batch, predictions]`.
    """
    logits = tf.stop_gradient(tf.cast(logits, tf.float32)) / temperature
    if draws is not None:
        if disallow_correct:
            original = tf.one_hot(tf.cast(original_ids, tf.int32), tf.shape(logits)[-1]) > 0
            logits = tf.where(original, float("-inf"), logits)  # probability exactly 0
        return _inverse_cdf(tf.nn.softmax(logits), draws.uniform(SAMPLE, tf.shape(logits)[1]))
    if disallow_correct:
        vocab = tf.shape(logits)[-1]
        logits += tf.one_hot(tf.cast(original_ids, tf.int32), vocab, dtype=tf.float32) * -1e9
    u = keras.random.uniform(tf.shape(logits), minval=1e-20, maxval=1.0, seed=seed)
    gumbel = -tf.math.log(-tf.math.log(u))
    return tf.argmax(logits + gumbel, axis=-1, output_type=tf.int32)


def _candidates(ids, input_mask, excluded_ids):
    """The real tokens that may be selected: not padding, not [CLS]/[SEP]."""
    candidates = tf.cast(input_mask, tf.bool)
    for token in excluded_ids:
        candidates &= tf.not_equal(ids, token)
    return candidates


def selection_counts(
    input_ids, input_mask, *, max_predictions: int, mask_prob: float, excluded_ids
):
    """How many positions `select_positions` chooses in each sequence, `[batch]` int32: known
    from the batch alone, before any draw (a step normalised by its tokens counts them first)."""
    candidates = _candidates(tf.cast(input_ids, tf.int32), input_mask, excluded_ids)
    count = tf.reduce_sum(tf.cast(candidates, tf.float32), axis=-1)
    wanted = tf.clip_by_value(tf.round(count * mask_prob), 1.0, float(max_predictions))
    return tf.cast(tf.minimum(wanted, count), tf.int32)  # a sequence of only specials: none


def _inverse_cdf(probs, u):
    """The id i with below_i <= u x total < below_i + p_i (below: exclusive running sum):
    chosen with probability p_i. Taken as the LAST id with p_i > 0 and below_i <= target, so
    an id of probability 0 (a disallowed original) is never returned, even when rounding puts
    the target at or past the total."""
    below = tf.cumsum(probs, axis=-1, exclusive=True)
    total = below[..., -1] + probs[..., -1]
    target = (u * total)[..., None]
    ids = tf.range(tf.shape(probs)[-1], dtype=tf.int32)
    allowed = (probs > 0.0) & (below <= target)
    return tf.reduce_max(tf.where(allowed, ids, -1), axis=-1)
