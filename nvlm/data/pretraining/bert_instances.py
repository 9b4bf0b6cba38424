"""`BertInstanceBuilder`: sentence-pair instances with next-sentence labels, per document.

The recipe (Devlin et al. 2019; google-research/bert and NVIDIA's create_pretraining_data.py,
reimplemented here on index ranges instead of token lists):
  * one target length per document: seq_len - 3, or with probability short_seq_prob a random
    length in [2, seq_len - 3] (so the model also sees short inputs);
  * sentences accumulate into a chunk until it reaches the target (or the document ends);
  * A = the first k sentences of the chunk, k random in [1, sentences - 1];
  * B = the rest of the chunk (label 0, IsNext), or with probability 0.5 (always, when the chunk
    has one sentence) a run of sentences from a random OTHER document of the shard, long enough
    for the remaining target (label 1); the chunk's sentences not used as A are put back and
    start the next chunk;
  * the pair is truncated to seq_len - 3 tokens by cutting the longer side (B on ties), each
    token from the front or the back at random.

Sentences of a shard are stored back to back, so A and B are each one (start, length) range of
the shard's flat id array; the arrays are built later for a whole batch (`instance_layout`).
"""

from __future__ import annotations

import random
from bisect import bisect_left

from nvlm.data.pretraining.shard_format import IS_NEXT, IS_RANDOM
from nvlm.data.pretraining.tokenized_shard import TokenizedShard


class BertInstanceBuilder:
    """Turn documents of a `TokenizedShard` into instance ranges.

    Args:
        shard: the tokenized documents (needs at least two, for random next segments).
        seq_len: tokens per instance including [CLS] and two [SEP].
        short_seq_prob: probability of a random shorter target length per document.
        rnd: the shard's `random.Random` (scalar draws are much cheaper here than numpy's).
    """

    def __init__(
        self, shard: TokenizedShard, seq_len: int, short_seq_prob: float, rnd: random.Random
    ):
        self.shard = shard
        self.max_tokens = seq_len - 3
        self.short_seq_prob = short_seq_prob
        self.rnd = rnd
        # Python lists: scalar indexing of a list is ~10x cheaper than of a numpy array.
        self._start = shard.sent_start.tolist()
        self._end = shard.sent_end.tolist()
        self._doc_first = shard.doc_first.tolist()
        self._doc_sents = shard.doc_sents.tolist()

    def document(self, doc: int, out: list[list[int]]) -> None:
        """Append (a_start, a_len, b_start, b_len, label) of each instance of `doc` to `out`."""
        rnd = self.rnd
        start, end = self._start, self._end
        first = self._doc_first[doc]
        last = first + self._doc_sents[doc] - 1
        target = self.max_tokens
        if rnd.random() < self.short_seq_prob:
            target = 2 + int(rnd.random() * (self.max_tokens - 1))  # uniform in [2, max_tokens]
        chunk_first = first
        i = first
        while i <= last:
            if i == last or end[i] - start[chunk_first] >= target:
                n = i - chunk_first + 1
                # Uniform in [1, n - 1]; int(random() * k) is ~10x cheaper than randint.
                a_sents = 1 if n == 1 else 1 + int(rnd.random() * (n - 1))
                a_start = start[chunk_first]
                a_len = end[chunk_first + a_sents - 1] - a_start
                if n == 1 or rnd.random() < 0.5:
                    b_start, b_len = self._random_segment(doc, target - a_len)
                    label = IS_RANDOM
                    i = chunk_first + a_sents - 1  # put the unused sentences back
                else:
                    b_start = end[chunk_first + a_sents - 1]
                    b_len = end[i] - b_start
                    label = IS_NEXT
                a_start, a_len, b_start, b_len = self._truncate(a_start, a_len, b_start, b_len)
                out.append([a_start, a_len, b_start, b_len, label])
                chunk_first = i + 1
            i += 1

    def _random_segment(self, doc: int, target_b: int) -> tuple[int, int]:
        """Sentences from a random sentence of another document until target_b tokens."""
        rnd = self.rnd
        other = int(rnd.random() * (len(self._doc_sents) - 1))
        other += other >= doc  # uniform over the other documents, no retry loop needed
        first = self._doc_first[other]
        n = self._doc_sents[other]
        j = first + int(rnd.random() * n)
        b_start = self._start[j]
        # First sentence k >= j whose end reaches the target (at least sentence j itself).
        k = bisect_left(self._end, b_start + max(target_b, 1), j, first + n - 1)
        return b_start, self._end[k] - b_start

    def _truncate(
        self, a_start: int, a_len: int, b_start: int, b_len: int
    ) -> tuple[int, int, int, int]:
        excess = a_len + b_len - self.max_tokens
        if excess <= 0:
            return a_start, a_len, b_start, b_len
        # Token-by-token the reference removes from the longer side (B on ties): first the
        # difference, then alternately B, A, B, ... Counted here in closed form.
        cut_a = cut_b = 0
        gap = min(excess, abs(a_len - b_len))
        if a_len > b_len:
            cut_a = gap
        else:
            cut_b = gap
        excess -= gap
        cut_b += (excess + 1) // 2
        cut_a += excess // 2
        # Each removed token came off the front or the back with probability 1/2: the number taken
        # from the front is Binomial(cut, 1/2) = the count of ones in `cut` random bits.
        front_a = self.rnd.getrandbits(cut_a).bit_count() if cut_a else 0
        front_b = self.rnd.getrandbits(cut_b).bit_count() if cut_b else 0
        return a_start + front_a, a_len - cut_a, b_start + front_b, b_len - cut_b
