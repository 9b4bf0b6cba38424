"""Static masked-LM masking for a batch of laid-out instances (BERT recipe), vectorised.

Per instance (Devlin et al. 2019; google-research/bert create_pretraining_data.py semantics):
  * number to predict = min(max_predictions, max(1, round(len(tokens) * masked_lm_prob))), where
    len(tokens) counts [CLS]/[SEP] as the reference does; never more than the maskable tokens;
  * positions are drawn uniformly among A/B tokens, never [CLS], [SEP] or [PAD];
  * whole-word masking draws words instead and takes all their pieces; words are tried in random
    order and one that would overshoot the budget is skipped (so fewer than the budget is possible);
  * each chosen position becomes [MASK] 80%, a random non-special token 10%, unchanged 10%.
"""

from __future__ import annotations

import numpy as np


def choose_positions(
    content: np.ndarray,
    n_pred: np.ndarray,
    max_predictions: int,
    rng: np.random.Generator,
    word_start: np.ndarray | None = None,
) -> np.ndarray:
    """bool [C, L]: the positions to predict."""
    rows, length = content.shape
    if word_start is None:
        # Random keys, non-candidates pushed last; the first n_pred in key order win.
        keys = rng.random((rows, length))
        keys[~content] = 2.0
        # The max_predictions smallest keys (unordered, O(L)), then ordered among themselves:
        # the first n_pred of those are the n_pred smallest of the row.
        k = min(max_predictions, length)
        smallest = np.argpartition(keys, k - 1, axis=1)[:, :k]
        order = np.take_along_axis(
            smallest, np.argsort(np.take_along_axis(keys, smallest, axis=1), axis=1), axis=1
        )
        take = np.arange(k)[None, :] < n_pred[:, None]
        chosen = np.zeros_like(content)
        r_idx = np.broadcast_to(np.arange(rows)[:, None], order.shape)
        chosen[r_idx[take], order[take]] = True
        return chosen
    # Whole words: number the words of each row (only on content positions).
    word_id = np.cumsum(word_start, axis=1) - 1
    n_words = word_start.sum(axis=1)
    width = int(n_words.max()) if rows else 0
    if width == 0:
        return np.zeros_like(content)
    flat = (np.arange(rows)[:, None] * width + word_id)[content]
    sizes = np.bincount(flat, minlength=rows * width).reshape(rows, width)
    keys = rng.random((rows, width))
    keys[np.arange(width)[None, :] >= n_words[:, None]] = 2.0
    order = np.argsort(keys, axis=1)
    sorted_sizes = np.take_along_axis(sizes, order, axis=1)
    taken = np.zeros(rows, dtype=np.int64)
    picked = np.zeros((rows, width), dtype=bool)
    all_rows = np.arange(rows)
    # One vector step per word rank: a word joins if it still fits the row's budget.
    for rank in range(width):
        size = sorted_sizes[:, rank]
        fits = (size > 0) & (taken + size <= n_pred)
        if not fits.any():
            if (taken >= n_pred).all():
                break
            continue
        taken += np.where(fits, size, 0)
        picked[all_rows[fits], order[fits, rank]] = True
    return content & picked[all_rows[:, None], np.clip(word_id, 0, width - 1)]


def apply_masking(
    input_ids: np.ndarray,
    content: np.ndarray,
    n_real: np.ndarray,
    *,
    max_predictions: int,
    masked_lm_prob: float,
    mask_id: int,
    replacement_ids: np.ndarray,
    rng: np.random.Generator,
    continuation: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Mask `input_ids` in place; return masked_lm_positions / masked_lm_ids [C, P] int32.

    `continuation` (bool per vocab id, True for `##` pieces) switches on whole-word masking.
    """
    rows = input_ids.shape[0]
    budget = np.maximum(1, np.rint(n_real * masked_lm_prob).astype(np.int64))
    n_pred = np.minimum(np.minimum(budget, max_predictions), content.sum(axis=1))
    word_start = None
    if continuation is not None:
        prev_content = np.zeros_like(content)
        prev_content[:, 1:] = content[:, :-1]
        # A `##` piece right after another content token continues that word; at a segment's
        # first position (after truncation) it has nothing to continue and starts a word.
        word_start = content & ~(continuation[input_ids] & prev_content)
    chosen = choose_positions(content, n_pred, max_predictions, rng, word_start)
    # Chosen positions in ascending order, zero padded: sort the row's positions with the
    # unchosen ones pushed past the end.
    length = chosen.shape[1]
    keyed = np.where(chosen, np.arange(length, dtype=np.int32)[None, :], length)
    positions = np.partition(keyed, max_predictions - 1, axis=1)[:, :max_predictions]
    positions.sort(axis=1)
    valid = positions < length
    positions = np.where(valid, positions, 0)
    r_idx = np.broadcast_to(np.arange(rows)[:, None], positions.shape)
    original = np.where(valid, input_ids[r_idx, positions], 0)
    draw = rng.random(positions.shape)
    random_tokens = replacement_ids[rng.integers(0, len(replacement_ids), positions.shape)]
    new = np.where(draw < 0.8, mask_id, np.where(draw < 0.9, original, random_tokens))
    input_ids[r_idx[valid], positions[valid]] = new[valid]
    return {
        "masked_lm_positions": positions.astype(np.int32),
        "masked_lm_ids": original.astype(np.int32),
    }
