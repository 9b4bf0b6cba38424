"""`SquadFeatures`: the model inputs of a SQuAD file, one row per (question, context window)."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

# Arrays in the order they are saved; every one has the feature count as its first dimension
# except the two per-context token tables at the end.
_PER_FEATURE = (
    "input_ids",
    "input_mask",
    "segment_ids",
    "start_positions",
    "end_positions",
    "is_impossible",
    "example_index",
    "context_index",
    "doc_offset",
    "doc_start",
    "doc_length",
    "token_is_max_context",
)
_PER_CONTEXT = ("context_token_chars", "context_token_ptr")
_COUNTS = ("truncated_queries", "dropped_examples")


@dataclass
class SquadFeatures:
    """Fixed-length windows `[CLS] query [SEP] context-window [SEP] [PAD]...` and their map back
    to the original context characters.

    N = number of features (a long context gives a question several windows), L = seq_len.

    Model inputs and targets:
        input_ids, input_mask, segment_ids: int32 [N, L]. Segment 0 = [CLS] query [SEP],
            segment 1 = context window + final [SEP]; mask 1 on real tokens, 0 on padding.
        start_positions, end_positions: int32 [N], the answer's token positions in the window;
            0 ([CLS]) when the answer is not wholly inside this window or the question is
            unanswerable.
        is_impossible: int32 [N], 1 for SQuAD v2.0 unanswerable questions.

    Where each window sits (compact: no per-position char arrays are stored):
        example_index: int32 [N], index into `SquadDataset.examples`.
        context_index: int32 [N], index into `SquadDataset.contexts`.
        doc_offset: int32 [N], window position of the first context token (= query length + 2).
        doc_start: int32 [N], index of that token among its context's tokens.
        doc_length: int32 [N], context tokens in the window (positions doc_offset ..
            doc_offset + doc_length - 1).
        token_is_max_context: bool [N, L], True at a context position when this window gives
            the token its most surrounding context of all the question's windows (each context
            token is max-context in exactly one window); False at non-context positions.
        context_token_chars: int32 [T, 2], (start, end) character offsets (end exclusive) into
            the ORIGINAL context string of every context token, all contexts concatenated.
        context_token_ptr: int64 [C + 1], context c's tokens are rows ptr[c] .. ptr[c + 1] - 1.

    Counts:
        truncated_queries: questions longer than max_query_len tokens (cut to that length).
        dropped_examples: training questions whose answer covers no token (skipped, as the
            reference recipe does).
    """

    input_ids: np.ndarray
    input_mask: np.ndarray
    segment_ids: np.ndarray
    start_positions: np.ndarray
    end_positions: np.ndarray
    is_impossible: np.ndarray
    example_index: np.ndarray
    context_index: np.ndarray
    doc_offset: np.ndarray
    doc_start: np.ndarray
    doc_length: np.ndarray
    token_is_max_context: np.ndarray
    context_token_chars: np.ndarray
    context_token_ptr: np.ndarray
    truncated_queries: int = 0
    dropped_examples: int = 0

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])

    @property
    def seq_len(self) -> int:
        return int(self.input_ids.shape[1])

    def inputs(self) -> dict[str, np.ndarray]:
        """The model's inputs (names as `BertQuestionAnswerer` expects)."""
        return {
            "input_ids": self.input_ids,
            "input_mask": self.input_mask,
            "segment_ids": self.segment_ids,
        }

    def targets(self) -> dict[str, np.ndarray]:
        return {
            "start_positions": self.start_positions,
            "end_positions": self.end_positions,
            "is_impossible": self.is_impossible,
        }

    def token_chars(self, i: int) -> np.ndarray:
        """int32 [doc_length[i], 2]: char offsets of feature i's context tokens, in window order."""
        first = int(self.context_token_ptr[self.context_index[i]]) + int(self.doc_start[i])
        return self.context_token_chars[first : first + int(self.doc_length[i])]

    def token_char_spans(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """int32 [L] start and end char per window position of feature i, -1 outside the context."""
        starts = np.full(self.seq_len, -1, dtype=np.int32)
        ends = np.full(self.seq_len, -1, dtype=np.int32)
        off, n = int(self.doc_offset[i]), int(self.doc_length[i])
        chars = self.token_chars(i)
        starts[off : off + n] = chars[:, 0]
        ends[off : off + n] = chars[:, 1]
        return starts, ends

    def char_span(self, i: int, start: int, end: int) -> tuple[int, int]:
        """Char span [start_char, end_char) of window positions start..end (context positions)."""
        chars = self.token_chars(i)
        off = int(self.doc_offset[i])
        return int(chars[start - off, 0]), int(chars[end - off, 1])

    def is_context(self, i: int, position: int) -> bool:
        off = int(self.doc_offset[i])
        return off <= position < off + int(self.doc_length[i])

    def rows_by_example(self, num_examples: int) -> list[np.ndarray]:
        """For each example 0 .. num_examples - 1, its feature rows in window order (int64; empty
        for a dropped example)."""
        count = num_examples
        order = np.argsort(self.example_index, kind="stable")
        bounds = np.searchsorted(self.example_index[order], np.arange(count + 1))
        return [order[bounds[e] : bounds[e + 1]] for e in range(count)]

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Everything as named arrays (what the cache saves)."""
        out = {name: getattr(self, name) for name in _PER_FEATURE + _PER_CONTEXT}
        for name in _COUNTS:
            out[name] = np.asarray(getattr(self, name), dtype=np.int64)
        return out

    @classmethod
    def from_arrays(cls, arrays) -> SquadFeatures:
        """Inverse of `to_arrays` (accepts a dict or an open `np.load` archive)."""
        kwargs = {}
        for field in fields(cls):
            value = arrays[field.name]
            kwargs[field.name] = int(value) if field.name in _COUNTS else np.asarray(value)
        return cls(**kwargs)
