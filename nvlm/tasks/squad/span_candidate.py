"""`SpanCandidate`: one scored answer span in one window, the unit of n-best assembly."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SpanCandidate:
    """A span of window positions `start..end` (inclusive) in feature row `feature`.

    Any span head produces these: BERT's independent start/end logits
    (`nvlm.tasks.squad.postprocess.bert_candidates`), or a joint beam search (ELECTRA) whose `score`
    is a sum of log-probabilities. `answer_example` ranks them by `score`; the logits are only
    reported in the n-best output.

    The no-answer candidate of SQuAD v2.0 is a `SpanCandidate` at the [CLS] position
    (start = end = 0); `answer_example` gives it the empty text.

    Args:
        feature: row in `SquadFeatures`.
        start, end: window positions (context positions, start <= end) of the first and last
            token.
        start_logit, end_logit: the head's scores for the two ends (reported as is).
        score: the ranking score (BERT: start_logit + end_logit).

    Example:
        >>> SpanCandidate(3, 17, 19, 4.0, 2.5, 6.5).end
        19
    """

    feature: int
    start: int
    end: int
    start_logit: float
    end_logit: float
    score: float
