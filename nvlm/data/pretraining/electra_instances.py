"""`ElectraInstanceBuilder`: documents packed into [CLS] A [SEP] (B [SEP]) sequences, unmasked.

The recipe (Clark et al. 2020; google-research/electra build_pretraining_dataset.py semantics,
reimplemented on index ranges):
  * sentences of a document accumulate until they reach the target length (seq_len; with
    probability short_seq_prob a random length in [5, seq_len]); the document's end flushes too;
  * 10% of the time the instance has a single segment (as in classification inputs); otherwise
    sentences go to A while A stays under half the target, a sentence that would cross that line
    goes to A half the time, and once B has begun every later sentence goes to B;
  * A is cut to seq_len - 2 tokens and B to what is left after A and three specials.
Masking is left to training (ELECTRA's generator masks dynamically).
"""

from __future__ import annotations

import random

from nvlm.data.pretraining.tokenized_shard import TokenizedShard

_SINGLE_SEGMENT_PROB = 0.1  # build_pretraining_dataset.py: "small chance to only have one segment"
_MIN_TARGET = 5


class ElectraInstanceBuilder:
    """Turn documents of a `TokenizedShard` into packed instance ranges.

    Args:
        shard: the tokenized documents.
        seq_len: tokens per instance including [CLS] and [SEP]s.
        short_seq_prob: probability that the next instance targets a random shorter length.
        rnd: the shard's `random.Random`.
    """

    def __init__(
        self, shard: TokenizedShard, seq_len: int, short_seq_prob: float, rnd: random.Random
    ):
        self.seq_len = seq_len
        self.short_seq_prob = short_seq_prob
        self.rnd = rnd
        self._start = shard.sent_start.tolist()
        self._end = shard.sent_end.tolist()
        self._doc_first = shard.doc_first.tolist()
        self._doc_sents = shard.doc_sents.tolist()
        self._target = seq_len

    def document(self, doc: int, out: list[list[int]]) -> None:
        """Append (a_start, a_len, b_start, b_len, 0) of each packed instance of `doc` to `out`."""
        first = self._doc_first[doc]
        last = first + self._doc_sents[doc] - 1
        chunk_first = first
        for i in range(first, last + 1):
            if i == last or self._end[i] - self._start[chunk_first] >= self._target:
                out.append(self._pack(chunk_first, i))
                chunk_first = i + 1

    def _pack(self, first: int, last: int) -> list[int]:
        rnd = self.rnd
        start, end = self._start, self._end
        if rnd.random() < _SINGLE_SEGMENT_PROB:
            a_target = 1 << 30
        else:
            a_target = (self._target - 3) // 2
        split = last + 1  # first sentence of B; last + 1 = no B
        a_len = 0
        for i in range(first, last + 1):
            n = end[i] - start[i]
            if a_len == 0 or a_len + n < a_target or (a_len < a_target and rnd.random() < 0.5):
                a_len += n
            else:
                split = i
                break
        a_start = start[first]
        a_len = min(a_len, self.seq_len - 2)
        b_start = start[split] if split <= last else 0
        b_len = end[last] - b_start if split <= last else 0
        b_len = min(b_len, max(0, self.seq_len - a_len - 3))
        if rnd.random() < self.short_seq_prob:  # uniform in [_MIN_TARGET, seq_len]
            self._target = _MIN_TARGET + int(rnd.random() * (self.seq_len - _MIN_TARGET + 1))
        else:
            self._target = self.seq_len
        return [a_start, a_len, b_start, b_len, 0]
