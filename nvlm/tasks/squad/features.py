"""Turn SQuAD questions into fixed-length BERT windows (`featurize`).

The layout follows the reference BERT recipe (Devlin et al. 2018, `run_squad.py`):
`[CLS] query [SEP] context-window [SEP]`, query cut to `max_query_len` tokens, a context longer
than the room left (`seq_len - query - 3`) split into windows whose starts are `doc_stride`
tokens apart, and each context token's "max context" window chosen by
`min(left, right) + 0.01 * window_length` (first window wins a tie).

One difference: the reference maps tokens back to whitespace-split words and then re-aligns the
answer text. We keep every token's character offsets in the ORIGINAL context (the `tokenizers`
offsets survive lower-casing and accent stripping), so a token span maps to an exact substring
with the file's own casing and spacing, and an answer maps to the tokens its characters overlap.
"""

from __future__ import annotations

import numpy as np

from nvlm.data.vocab import Vocab
from nvlm.errors import UserError
from nvlm.tasks.squad.dataset import SquadDataset
from nvlm.tasks.squad.squad_features import SquadFeatures

# The reference recipe's defaults (BERT run_squad.py flags; NVIDIA's scripts keep them).
SEQ_LEN = 384
DOC_STRIDE = 128
MAX_QUERY_LEN = 64

# [CLS] + [SEP] after the query + [SEP] after the window.
_SPECIALS_PER_WINDOW = 3


def featurize(
    dataset: SquadDataset,
    vocab: Vocab,
    *,
    lowercase: bool,
    seq_len: int = SEQ_LEN,
    doc_stride: int = DOC_STRIDE,
    max_query_len: int = MAX_QUERY_LEN,
    training: bool = False,
) -> SquadFeatures:
    """Tokenize every question and context of `dataset` and lay out the windows.

    Args:
        dataset: from `read_squad`.
        vocab: the model's WordPiece vocab.
        lowercase: True for an uncased vocab (lower-case and strip accents, as BERT does).
        seq_len: tokens per window, specials included.
        doc_stride: tokens between the starts of consecutive windows of one context (so
            consecutive windows share `window_length - doc_stride` tokens).
        max_query_len: a longer question is cut to this many tokens (counted in
            `truncated_queries`).
        training: drop questions whose answer covers no token (counted in `dropped_examples`)
            instead of keeping them with [CLS] targets.
    """
    _check_lengths(seq_len, doc_stride, max_query_len)
    tokenizer = vocab.tokenizer(lowercase=lowercase)
    # encode_batch runs in Rust on all cores; each paragraph is tokenized once, however many
    # questions it has.
    context_encodings = tokenizer.encode_batch(dataset.contexts)
    context_ids = [np.asarray(e.ids, dtype=np.int32) for e in context_encodings]
    context_chars = [
        np.asarray(e.offsets, dtype=np.int32).reshape(-1, 2) for e in context_encodings
    ]
    del context_encodings
    questions = tokenizer.encode_batch([ex.question for ex in dataset.examples])

    plans, truncated, dropped = _plan_windows(
        dataset, questions, context_ids, context_chars, seq_len, doc_stride, max_query_len, training
    )
    count = sum(len(plan.starts) for plan in plans)
    arrays = _allocate(count, seq_len, vocab.pad_id)
    row = 0
    for plan in plans:
        row = _fill(arrays, row, plan, context_ids[plan.context], vocab.cls_id, vocab.sep_id)

    sizes = np.array([len(c) for c in context_chars], dtype=np.int64)
    ptr = np.zeros(len(sizes) + 1, dtype=np.int64)
    np.cumsum(sizes, out=ptr[1:])
    token_chars = (
        np.concatenate(context_chars) if context_chars else np.zeros((0, 2), dtype=np.int32)
    )
    return SquadFeatures(
        **arrays,
        context_token_chars=token_chars.astype(np.int32, copy=False),
        context_token_ptr=ptr,
        truncated_queries=truncated,
        dropped_examples=dropped,
    )


def _check_lengths(seq_len: int, doc_stride: int, max_query_len: int) -> None:
    if max_query_len < 1:
        raise UserError(f"max query length must be at least 1, not {max_query_len}")
    if seq_len < max_query_len + _SPECIALS_PER_WINDOW + 1:
        raise UserError(
            f"seq len {seq_len} leaves no room for the context after a {max_query_len}-token query",
            hint=f"use a seq len above {max_query_len + _SPECIALS_PER_WINDOW}",
        )
    if doc_stride < 1:
        raise UserError(f"doc stride must be at least 1, not {doc_stride}")


class _Plan:
    """One question's windows, decided before any array is allocated."""

    __slots__ = (
        "example",
        "context",
        "query",
        "starts",
        "lengths",
        "max_context",
        "answer",
        "impossible",
    )

    def __init__(self, example, context, query, starts, lengths, max_context, answer, impossible):
        self.example = example
        self.context = context
        self.query = query
        self.starts = starts
        self.lengths = lengths
        self.max_context = max_context
        self.answer = answer  # (first token, last token) in the context, or None
        self.impossible = impossible


def _plan_windows(
    dataset, questions, context_ids, context_chars, seq_len, doc_stride, max_query_len, training
):
    plans: list[_Plan] = []
    truncated = dropped = 0
    for e, (example, encoding) in enumerate(zip(dataset.examples, questions, strict=True)):
        query = encoding.ids
        if len(query) > max_query_len:
            truncated += 1
            query = query[:max_query_len]
        n = len(context_ids[example.context_id])
        if n == 0:
            raise UserError(
                f"{dataset.path}: question {example.qid!r}: the context has no tokens "
                "(only control or unknown characters)"
            )
        answer = None
        if example.answers and not example.is_impossible:
            text, start = example.answers[0]
            answer = _answer_tokens(context_chars[example.context_id], start, start + len(text))
            if answer is None and training:
                dropped += 1
                continue
        starts, lengths = _windows(n, seq_len - len(query) - _SPECIALS_PER_WINDOW, doc_stride)
        plans.append(
            _Plan(
                e,
                example.context_id,
                np.asarray(query, dtype=np.int32),
                starts,
                lengths,
                _max_context(n, starts, lengths),
                answer,
                example.is_impossible,
            )
        )
    return plans, truncated, dropped


def _windows(n: int, room: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Starts and lengths of the windows over n context tokens with `room` tokens each.

    The reference loop: the next window starts min(length, stride) after the previous one,
    and the last window is the first to reach the end of the context.
    """
    if n <= room:
        return np.zeros(1, dtype=np.int64), np.full(1, n, dtype=np.int64)
    step = min(room, stride)
    count = -(-(n - room) // step) + 1  # ceil division: windows until one reaches the end
    starts = np.arange(count, dtype=np.int64) * step
    return starts, np.minimum(n - starts, room)


def _max_context(n: int, starts: np.ndarray, lengths: np.ndarray) -> list[np.ndarray] | None:
    """Per window, bool [length]: is this the token's best window? None when there is one
    window (every token is then max-context).

    One pass over the windows, each scoring only its own tokens: time and memory grow with
    the tokens the windows hold (about n * room / stride), never with windows x n (a [windows,
    n] table took gigabytes for a 200 KB context)."""
    if len(starts) == 1:
        return None
    best_score = np.full(n, -np.inf)
    best_window = np.zeros(n, dtype=np.int64)
    for k, (s, m) in enumerate(zip(starts.tolist(), lengths.tolist(), strict=True)):
        offset = np.arange(m)
        # Same arithmetic as the reference: min(left, right) + 0.01 * length.
        score = np.minimum(offset, m - 1 - offset) + 0.01 * m
        # Strictly better only: on a tie the earlier window keeps the token.
        better = score > best_score[s : s + m]
        best_score[s : s + m][better] = score[better]
        best_window[s : s + m][better] = k
    return [
        best_window[s : s + m] == k for k, (s, m) in enumerate(zip(starts, lengths, strict=True))
    ]


def _answer_tokens(chars: np.ndarray, begin: int, end: int) -> tuple[int, int] | None:
    """First and last context token overlapping the characters [begin, end), or None."""
    first = int(np.searchsorted(chars[:, 1], begin, side="right"))  # first token ending after begin
    last = int(np.searchsorted(chars[:, 0], end, side="left")) - 1  # last token starting before end
    if first > last:
        return None
    return first, last


def _allocate(count: int, seq_len: int, pad_id: int) -> dict[str, np.ndarray]:
    per_feature = {
        name: np.zeros(count, dtype=np.int32)
        for name in (
            "start_positions",
            "end_positions",
            "is_impossible",
            "example_index",
            "context_index",
            "doc_offset",
            "doc_start",
            "doc_length",
        )
    }
    return {
        "input_ids": np.full((count, seq_len), pad_id, dtype=np.int32),
        "input_mask": np.zeros((count, seq_len), dtype=np.int32),
        "segment_ids": np.zeros((count, seq_len), dtype=np.int32),
        "token_is_max_context": np.zeros((count, seq_len), dtype=bool),
        **per_feature,
    }


def _fill(arrays: dict, row: int, plan: _Plan, context: np.ndarray, cls_id: int, sep_id: int):
    """Write the plan's windows from `row` on; returns the next free row."""
    ids, mask, segs = arrays["input_ids"], arrays["input_mask"], arrays["segment_ids"]
    query = plan.query
    offset = len(query) + 2
    for k, (start, length) in enumerate(zip(plan.starts, plan.lengths, strict=True)):
        start, length = int(start), int(length)
        end = offset + length  # position of the closing [SEP]
        ids[row, 0] = cls_id
        ids[row, 1 : offset - 1] = query
        ids[row, offset - 1] = sep_id
        ids[row, offset:end] = context[start : start + length]
        ids[row, end] = sep_id
        mask[row, : end + 1] = 1
        segs[row, offset : end + 1] = 1
        flags = True if plan.max_context is None else plan.max_context[k]
        arrays["token_is_max_context"][row, offset:end] = flags
        if plan.answer is not None:
            first, last = plan.answer
            if start <= first and last < start + length:
                arrays["start_positions"][row] = offset + first - start
                arrays["end_positions"][row] = offset + last - start
        arrays["is_impossible"][row] = plan.impossible
        arrays["example_index"][row] = plan.example
        arrays["context_index"][row] = plan.context
        arrays["doc_offset"][row] = offset
        arrays["doc_start"][row] = start
        arrays["doc_length"][row] = length
        row += 1
    return row
