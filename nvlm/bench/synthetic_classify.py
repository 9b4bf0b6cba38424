"""Synthetic sentence-pair classification features (`nvlm benchmark train|infer --task classify`
without `--data`): the arrays `nvlm.tasks.classify.featurize` makes, of made-up word pieces.

    feats = classify_features(examples=256, seq_len=128, vocab_size=30522, num_labels=2)
    spec = spec_from_features(plugin, cfg, model, feats, world)   # nvlm.tasks.classify.task

The layout is the classify task's own (`[CLS] a [SEP] b [SEP]`, segment 1 on `b [SEP]`, [PAD]
after), pairs longer than the window are cut by its rule (`truncate_pair`: longest first), and
the ids are BERT's (`synthetic.CLS_ID`, ...) with word pieces from the same Zipf law as the other
synthetic data. Only the lengths are a modelling choice, stated below.
"""

from __future__ import annotations

import numpy as np

from nvlm.bench.synthetic import (
    _PIECE_EXPONENT,
    CLS_ID,
    FIRST_PIECE,
    PAD_ID,
    SEP_ID,
    _cdf,
    _check_wordpiece_size,
    _draw,
    _lognormal,
    _require,
    _zipf,
)
from nvlm.tasks.classify.features import ClassifyFeatures, truncate_pair

# Word pieces of the two texts of a pair, LogNormal(ln median, sigma): an estimate for GLUE's
# pair tasks (MNLI, QQP, MRPC, RTE): a sentence-long first text (median 22 pieces) and a shorter
# second one (median 12), so a pair holds a median 39 and a mean 42 of 128 positions (a
# third real tokens, the rest padding) and under 1% of pairs are truncated at seq 128. Not fitted to GLUE's files.
_FIRST_PIECES = (float(np.log(22.0)), 0.55)
_SECOND_PIECES = (float(np.log(12.0)), 0.50)
# Regression targets: uniform on STS-B's 0-5 similarity scale.
_TARGET_RANGE = (0.0, 5.0)


def classify_features(
    *,
    examples: int,
    seq_len: int,
    vocab_size: int,
    num_labels: int = 2,
    seed: int = 0,
) -> ClassifyFeatures:
    """`examples` text pairs laid out as `featurize` lays them out, with labels drawn uniformly
    from `num_labels` classes (`num_labels` 1: float targets on 0-5, a regression set).

    Example:
        >>> f = classify_features(examples=4, seq_len=32, vocab_size=1000)
        >>> f.input_ids.shape, f.label_ids.shape
        ((4, 32), (4,))
    """
    _require(examples >= 1, f"examples must be at least 1, not {examples}")
    _require(seq_len >= 5, f"sequence length must be at least 5 for a pair, not {seq_len}")
    _require(num_labels >= 1, f"num_labels must be at least 1, not {num_labels}")
    _check_wordpiece_size(vocab_size)
    rng = np.random.default_rng(seed)
    piece_cdf = _cdf(_zipf(vocab_size - FIRST_PIECE, _PIECE_EXPONENT))
    firsts = np.maximum(1, np.rint(_lognormal(rng, _FIRST_PIECES, examples))).astype(np.int64)
    seconds = np.maximum(1, np.rint(_lognormal(rng, _SECOND_PIECES, examples))).astype(np.int64)
    input_ids = np.full((examples, seq_len), PAD_ID, dtype=np.int32)
    input_mask = np.zeros((examples, seq_len), dtype=np.int32)
    segment_ids = np.zeros((examples, seq_len), dtype=np.int32)
    room = seq_len - 3  # [CLS] a [SEP] b [SEP]
    truncated = 0
    for row in range(examples):
        a = list(FIRST_PIECE + _draw(rng, piece_cdf, int(firsts[row])))
        b = list(FIRST_PIECE + _draw(rng, piece_cdf, int(seconds[row])))
        truncated += truncate_pair(a, b, room)
        tokens = [CLS_ID, *a, SEP_ID, *b, SEP_ID]
        input_ids[row, : len(tokens)] = tokens
        input_mask[row, : len(tokens)] = 1
        segment_ids[row, len(a) + 2 : len(tokens)] = 1
    if num_labels == 1:
        targets = rng.uniform(*_TARGET_RANGE, examples).astype(np.float32)
        return ClassifyFeatures(input_ids, input_mask, segment_ids, None, targets, truncated)
    labels = rng.integers(0, num_labels, examples).astype(np.int32)
    return ClassifyFeatures(input_ids, input_mask, segment_ids, labels, None, truncated)
