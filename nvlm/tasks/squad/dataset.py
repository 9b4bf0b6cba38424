"""`SquadDataset`: the questions of one SQuAD file, with its paragraphs and identity."""

from __future__ import annotations

from dataclasses import dataclass

from nvlm.tasks.squad.example import SquadExample


@dataclass(frozen=True)
class SquadDataset:
    """Everything read from one SQuAD JSON file (see `nvlm.tasks.squad.reader.read_squad`).

    Args:
        examples: the questions in file order.
        contexts: the distinct paragraphs in file order; `examples[i].context_id` indexes it.
        version: "1.1" or "2.0" (2.0 allows unanswerable questions).
        path: the file read ("<memory>" when parsed from an object).
        sha256: hex digest of the file's bytes (part of the feature cache key).

    Example:
        >>> ds = SquadDataset([SquadExample("q1", "Who?", "Ada wrote it.", 0, (("Ada", 0),))],
        ...                   ["Ada wrote it."], "1.1")
        >>> ds.gold_answers()
        {'q1': ['Ada']}
    """

    examples: list[SquadExample]
    contexts: list[str]
    version: str
    path: str = "<memory>"
    sha256: str = ""

    def __len__(self) -> int:
        return len(self.examples)

    @property
    def is_v2(self) -> bool:
        return self.version == "2.0"

    def gold_answers(self) -> dict[str, list[str]]:
        """{qid: [answer texts]} in file order: the input of `nvlm.tasks.squad.metrics`."""
        return {ex.qid: list(ex.answer_texts) for ex in self.examples}
