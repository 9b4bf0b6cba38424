"""`SquadExample`: one question about one context, as read from a SQuAD JSON file."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SquadExample:
    """A question, its context and its gold answers.

    Args:
        qid: the question id (predictions are keyed by it).
        question: the question text.
        context: the paragraph text, exactly as in the file (answers index into it).
        context_id: index of the paragraph in `SquadDataset.contexts`; questions on the same
            paragraph share it, so each paragraph is tokenized once.
        answers: `(text, answer_start)` pairs; `context[start:start + len(text)] == text` holds
            for each (the reader checks it). Training uses the first; scoring uses all texts.
        is_impossible: SQuAD v2.0 unanswerable question (then `answers` is empty).
        plausible_answers: v2.0 `plausible_answers` of an unanswerable question, kept as read
            (not checked and not used for training or scoring).

    Example:
        >>> ex = SquadExample("q1", "Who?", "Ada wrote it.", 0, (("Ada", 0),))
        >>> ex.answer_texts
        ('Ada',)
    """

    qid: str
    question: str
    context: str
    context_id: int
    answers: tuple[tuple[str, int], ...] = ()
    is_impossible: bool = False
    plausible_answers: tuple[tuple[str, int], ...] = ()

    @property
    def answer_texts(self) -> tuple[str, ...]:
        return tuple(text for text, _ in self.answers)
