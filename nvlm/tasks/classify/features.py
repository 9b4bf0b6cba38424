"""Texts (and text pairs) -> fixed-length BERT inputs (`featurize`, `encode`).

The layout is pretraining's: `[CLS] a [SEP]` for one text, `[CLS] a [SEP] b [SEP]` for a pair,
segment id 0 up to and including the first [SEP] and 1 for `b [SEP]`, input mask 1 on real
tokens, padding with [PAD] (segment 0, mask 0) up to `seq_len`.

Truncation follows the reference BERT recipe (google-research/bert `run_classifier.py`,
`_truncate_seq_pair`): while a pair is too long, drop the last token of the LONGER text (of the
second one when both are as long), so a short question keeps all its tokens; a single text is
cut at its end. Every truncated example is counted, so a caller can say how many were cut.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from nvlm.data.vocab import Vocab
from nvlm.errors import UserError
from nvlm.tasks.classify.reader import ClassifyDataset

# The reference recipe's max_seq_length for GLUE (BERT run_classifier.py; `data.seq_len`).
SEQ_LEN = 128


@dataclass(frozen=True)
class ClassifyFeatures:
    """Model inputs of a classification set, one row per example.

    Args:
        input_ids, input_mask, segment_ids: int32 [examples, seq_len].
        label_ids: int32 [examples] (classification), else None.
        targets: float32 [examples] (regression), else None.
        truncated: how many examples were cut to fit `seq_len`.
    """

    input_ids: np.ndarray
    input_mask: np.ndarray
    segment_ids: np.ndarray
    label_ids: np.ndarray | None
    targets: np.ndarray | None
    truncated: int

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])


def truncate_pair(a: list, b: list, max_tokens: int) -> bool:
    """Shorten `a` and `b` in place until together they hold at most `max_tokens`: one token
    at a time from the end of the longer one (of `b` on a tie). True when anything was cut.

    Example:
        >>> a, b = [1, 2, 3, 4, 5], [6, 7]
        >>> truncate_pair(a, b, 5), a, b
        (True, [1, 2, 3], [6, 7])
    """
    cut = False
    while len(a) + len(b) > max_tokens:
        (a if len(a) > len(b) else b).pop()
        cut = True
    return cut


def featurize(
    dataset: ClassifyDataset, vocab: Vocab, *, lowercase: bool, seq_len: int = SEQ_LEN
) -> ClassifyFeatures:
    """Tokenize and lay out every example of `dataset`, with its label ids or targets.

    Example:
        >>> features = featurize(read_classify("train.jsonl"), vocab, lowercase=True)  # doctest: +SKIP
    """
    ids, mask, segments, truncated = encode(
        dataset.texts, dataset.pairs, vocab, lowercase=lowercase, seq_len=seq_len
    )
    return ClassifyFeatures(ids, mask, segments, dataset.labels, dataset.targets, truncated)


def encode(
    texts: Sequence[str],
    pairs: Sequence[str] | None,
    vocab: Vocab,
    *,
    lowercase: bool,
    seq_len: int = SEQ_LEN,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """(input_ids, input_mask, segment_ids, truncated count) of texts without labels (the
    predict path uses it as `featurize` does)."""
    if pairs is not None and len(pairs) != len(texts):
        raise ValueError(f"{len(texts)} texts but {len(pairs)} pairs")
    specials = 2 if pairs is None else 3  # [CLS] a [SEP] (b [SEP])
    least = specials + (1 if pairs is None else 2)
    if seq_len < least:
        raise UserError(
            f"seq len {seq_len} leaves no room for the text{'s' if pairs else ''}",
            hint=f"use data.seq_len {least} or more (the reference uses {SEQ_LEN})",
        )
    tokenizer = vocab.tokenizer(lowercase=lowercase)
    # encode_batch runs in Rust on every core; no specials are added by this tokenizer.
    firsts = [e.ids for e in tokenizer.encode_batch(list(texts))]
    seconds = [e.ids for e in tokenizer.encode_batch(list(pairs))] if pairs is not None else None
    count = len(firsts)
    input_ids = np.full((count, seq_len), vocab.pad_id, dtype=np.int32)
    input_mask = np.zeros((count, seq_len), dtype=np.int32)
    segment_ids = np.zeros((count, seq_len), dtype=np.int32)
    room = seq_len - specials
    truncated = 0
    for row, a in enumerate(firsts):
        if seconds is None:
            truncated += len(a) > room
            tokens = [vocab.cls_id, *a[:room], vocab.sep_id]
            first_segment = len(tokens)
        else:
            b = list(seconds[row])
            a = list(a)
            truncated += truncate_pair(a, b, room)
            tokens = [vocab.cls_id, *a, vocab.sep_id, *b, vocab.sep_id]
            first_segment = len(a) + 2
        input_ids[row, : len(tokens)] = tokens
        input_mask[row, : len(tokens)] = 1
        segment_ids[row, first_segment : len(tokens)] = 1
    return input_ids, input_mask, segment_ids, int(truncated)
