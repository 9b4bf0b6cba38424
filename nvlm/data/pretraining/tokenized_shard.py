"""`TokenizedShard`: read-only view of a `TokenSpill` (ids memory-mapped)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


class TokenizedShard:
    """Documents of one shard as index arrays over a flat, memory-mapped id array.

    Attributes:
        ids: int32 [tokens], memory-mapped.
        sent_start / sent_end: int64 [sentences], slice bounds of each sentence in `ids`.
        doc_first: int64 [documents], index of each document's first sentence.
        doc_sents: int64 [documents], sentences per document.
    """

    def __init__(self, stem: Path) -> None:
        ids_path = stem.with_suffix(".ids")
        if ids_path.stat().st_size:
            self.ids = np.memmap(ids_path, dtype=np.int32, mode="r")
        else:  # np.memmap refuses empty files
            self.ids = np.zeros(0, dtype=np.int32)
        lengths = np.fromfile(stem.with_suffix(".sents"), dtype=np.int32).astype(np.int64)
        self.sent_end = np.cumsum(lengths)
        self.sent_start = self.sent_end - lengths
        self.doc_sents = np.fromfile(stem.with_suffix(".docs"), dtype=np.int32).astype(np.int64)
        self.doc_first = np.cumsum(self.doc_sents) - self.doc_sents

    @property
    def documents(self) -> int:
        return len(self.doc_sents)

    def close(self) -> None:
        # Drop the map before the files are deleted (matters on Windows, harmless elsewhere).
        self.ids = np.zeros(0, dtype=np.int32)
