"""`TokenSpill`: a shard's tokenized documents, appended to disk as they are produced.

Each document is tokenized once; the dupe-factor passes and the random-next-segment lookups then
read the ids back through a memory map (`TokenizedShard`). RAM holds only the per-sentence
lengths (4 bytes per sentence) and per-document counts, never the corpus.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


class TokenSpill:
    """Append-only writer of `<stem>.ids` (int32 tokens), `.sents` (int32 lengths), `.docs`
    (int32 sentences per document). Sentences and documents are stored back to back, so a run of
    consecutive sentences is one contiguous slice of ids."""

    def __init__(self, stem: Path) -> None:
        self.stem = stem
        self._ids = open(stem.with_suffix(".ids"), "wb")
        self._sents = open(stem.with_suffix(".sents"), "wb")
        self._docs = open(stem.with_suffix(".docs"), "wb")
        self.documents = 0
        self.sentences = 0
        self.tokens = 0

    def add(self, ids: np.ndarray, sentence_lengths: np.ndarray, doc_sentences: np.ndarray) -> None:
        """Append whole documents: their flat ids, each sentence's length, each doc's sentence count."""
        self._ids.write(np.ascontiguousarray(ids, dtype=np.int32).tobytes())
        self._sents.write(np.ascontiguousarray(sentence_lengths, dtype=np.int32).tobytes())
        self._docs.write(np.ascontiguousarray(doc_sentences, dtype=np.int32).tobytes())
        self.documents += len(doc_sentences)
        self.sentences += len(sentence_lengths)
        self.tokens += len(ids)

    def close(self) -> None:
        for handle in (self._ids, self._sents, self._docs):
            handle.close()

    @property
    def bytes_written(self) -> int:
        return 4 * (self.tokens + self.sentences + self.documents)

    def remove(self) -> None:
        try:
            self.close()
        except OSError:
            pass  # a full disk fails the last flush; the files go anyway
        for suffix in (".ids", ".sents", ".docs"):
            self.stem.with_suffix(suffix).unlink(missing_ok=True)
