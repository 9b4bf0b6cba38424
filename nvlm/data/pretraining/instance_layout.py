"""Lay out a batch of instances as fixed-size arrays, all rows at once (numpy, no per-token loop).

An instance is given as two ranges of the flat token array: A = ids[a_start : a_start + a_len]
and B = ids[b_start : b_start + b_len]. The row becomes

    [CLS] A [SEP] B [SEP] [PAD] ...     (B empty: [CLS] A [SEP] [PAD] ...)

with segment id 0 up to and including the first [SEP] and 1 for B and its [SEP].
"""

from __future__ import annotations

import numpy as np


def layout(
    ids: np.ndarray,
    a_start: np.ndarray,
    a_len: np.ndarray,
    b_start: np.ndarray,
    b_len: np.ndarray,
    seq_len: int,
    cls_id: int,
    sep_id: int,
    pad_id: int,
) -> dict[str, np.ndarray]:
    """Return input_ids [C, L] int32, input_mask/segment_ids int8, plus `content` (bool [C, L]:
    positions holding A or B tokens, i.e. the ones masking may choose) and `n_real` [C]."""
    pos = np.arange(seq_len, dtype=np.int64)[None, :]
    la = a_len.astype(np.int64)[:, None]
    lb = b_len.astype(np.int64)[:, None]
    has_b = lb > 0
    in_a = (pos >= 1) & (pos <= la)
    b_first = la + 2
    in_b = (pos >= b_first) & (pos < b_first + lb)
    src = np.where(in_a, a_start[:, None] + pos - 1, 0)
    src = np.where(in_b, b_start[:, None] + pos - b_first, src)
    content = in_a | in_b
    input_ids = np.where(content, ids[src], pad_id).astype(np.int32)
    input_ids[:, 0] = cls_id
    input_ids[pos == la + 1] = sep_id  # boolean [C, L] mask broadcasts over rows
    input_ids[(pos == b_first + lb) & has_b] = sep_id
    n_real = np.where(has_b[:, 0], la[:, 0] + lb[:, 0] + 3, la[:, 0] + 2)
    input_mask = pos < n_real[:, None]
    segment_ids = (pos >= b_first) & input_mask & has_b
    return {
        "input_ids": input_ids,
        "input_mask": input_mask.astype(np.int8),
        "segment_ids": segment_ids.astype(np.int8),
        "content": content,
        "n_real": n_real,
    }
