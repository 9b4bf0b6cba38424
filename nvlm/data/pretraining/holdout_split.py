"""`HoldoutSplit`: which documents of the input are held out of training (--holdout-documents).

The split is made at document granularity, before any instance is built: the held-out documents
go to DIR/heldout/ (a complete shard set with its own manifest), every other document to DIR.
Instances only ever combine sentences of one shard, and a shard only holds documents of one
side, so no training instance (BERT's random next segments included) contains a sentence of a
held-out document, and the other way round.

Documents are numbered 0, 1, ... in input order (as `nvlm.data.inputs` counts them); the
held-out ones are drawn without replacement from a generator seeded by (--seed, a constant of
its own), so the same seed gives the same split and another seed another one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from nvlm.errors import UserError

HELDOUT_DIR = "heldout"
# Keeps the split's random stream apart from the shards', seeded by (seed, shard index < 100000).
_SPLIT_STREAM = 0x686F6C64  # "hold"


def holdout_count(value: float, documents: int) -> int:
    """The number of documents --holdout-documents VALUE holds out of `documents`.

    A value below 1 is a fraction of the documents (rounded, at least 1); a value of 1 or more
    is a count and must be whole.
    """
    if not value > 0:
        raise UserError(
            f"--holdout-documents must be a count of 1 or more or a fraction in (0, 1), "
            f"not {value:g}"
        )
    if value < 1:
        return max(1, round(value * documents))
    if value != int(value):
        raise UserError(
            f"--holdout-documents {value:g} is neither a whole count nor a fraction below 1",
            hint="use e.g. --holdout-documents 100 (documents) or 0.01 (1% of them)",
        )
    return int(value)


@dataclass(frozen=True)
class HoldoutSplit:
    """The held-out documents of an input of `documents` documents.

    Args:
        requested: the --holdout-documents value as given (a count, or a fraction below 1).
        seed: the --seed the draw derives from.
        documents: documents in the input.
        heldout: indices (input order) of the held-out documents, ascending.

    Example:
        >>> HoldoutSplit.plan(0.1, seed=1, documents=50, need=2).training_documents
        45
    """

    requested: float
    seed: int
    documents: int
    heldout: tuple[int, ...]

    @classmethod
    def plan(cls, requested: float, *, seed: int, documents: int, need: int) -> HoldoutSplit:
        """Draw the split; refuse one that leaves either side fewer than `need` documents
        (BERT needs 2: a random next segment comes from another document of the shard)."""
        n = holdout_count(requested, documents)
        shown = f"--holdout-documents {requested:g}"
        if requested < 1:
            shown += f" ({n} of {documents} documents)"
        if n >= documents:
            raise UserError(
                f"{shown} leaves no document for training: the input has {documents} documents",
                hint=f"hold out fewer than {documents} documents",
            )
        for side, count in (("held-out", n), ("training", documents - n)):
            if count < need:
                raise UserError(
                    f"{shown} leaves {count} {side} document(s); BERT needs at least {need} "
                    "on each side (random next segments come from another document)",
                    hint="add documents, or change --holdout-documents",
                )
        rng = np.random.default_rng(np.random.SeedSequence([seed, _SPLIT_STREAM]))
        chosen = np.sort(rng.choice(documents, size=n, replace=False))
        return cls(requested, seed, documents, tuple(int(i) for i in chosen))

    @property
    def training_documents(self) -> int:
        return self.documents - len(self.heldout)

    def count(self, role: str) -> int:
        """Documents on one side: role "training" or "heldout"."""
        return len(self.heldout) if role == "heldout" else self.training_documents

    def shards(self, training_shards: int, need: int) -> int:
        """Shards of the held-out set: its share of the training shards (at least one), no more
        than it can fill."""
        share = -(-training_shards * len(self.heldout) // self.training_documents)
        return max(1, min(share, len(self.heldout) // need))

    def identity(self) -> dict:
        """What the split is, for the manifests and for comparing with an earlier run."""
        listed = ",".join(map(str, self.heldout)).encode()
        return {
            "requested": self.requested,
            "seed": self.seed,
            "documents": self.documents,
            "training_documents": self.training_documents,
            "heldout_documents": len(self.heldout),
            # Input-order indices; the digest lets two splits be compared at a glance.
            "heldout_indices": list(self.heldout),
            "heldout_sha256": hashlib.sha256(listed).hexdigest(),
        }
