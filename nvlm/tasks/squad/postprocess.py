"""From span scores per window to one answer per question (n-best, SQuAD v2.0 no-answer).

Rules (the reference BERT recipe's, with exact character mapping):
- a span is valid when both ends are context positions of the window (never [CLS], the query,
  [SEP] or padding), start <= end, it has at most `max_answer_len` tokens, and its start token
  is a max-context token of that window (so a span is proposed by the window that sees its start
  with the most context);
- BERT ranks spans by start_logit + end_logit. We search every valid span of a window (at most
  seq_len x max_answer_len sums) instead of the reference's top-20 starts x top-20 ends, so the
  n best valid spans are found even when some top logits fall on invalid positions;
- spans of all windows are merged best first; a text already listed is skipped (overlapping
  windows propose the same span twice), and the list stops at `n_best` texts;
- the answer text is `context[start_char:end_char]` of the first and last token's offsets: an
  exact substring of the original context;
- SQuAD v2.0: the null score is the minimum over windows of start_logit[0] + end_logit[0]; the
  "" entry joins the n-best list (appended if it did not make the cut), probabilities are a
  softmax over the listed scores, null_odds = null score - best non-null score, and the
  prediction is "" when null_odds > null_threshold.

`answer_example` is head-agnostic: any list of `SpanCandidate`s (e.g. from ELECTRA's joint
beam search, filtered with `valid_span`) gets the same n-best assembly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from nvlm.tasks.squad.dataset import SquadDataset
from nvlm.tasks.squad.example import SquadExample
from nvlm.tasks.squad.predictions import SquadPredictions
from nvlm.tasks.squad.span_candidate import SpanCandidate
from nvlm.tasks.squad.squad_features import SquadFeatures

# Reference recipe defaults (BERT run_squad.py: n_best_size, max_answer_length).
N_BEST = 20
MAX_ANSWER_LEN = 30
# BERT's default `null_score_diff_threshold`; tuned per model on the dev set.
NULL_THRESHOLD = 0.0


def decode_predictions(
    dataset: SquadDataset,
    features: SquadFeatures,
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    *,
    n_best: int = N_BEST,
    max_answer_len: int = MAX_ANSWER_LEN,
    null_threshold: float = NULL_THRESHOLD,
    version_2: bool | None = None,
) -> SquadPredictions:
    """Answers for every question of `dataset` from a span head's logits.

    Args:
        dataset, features: the file and its features (`featurize` / `load_or_featurize`).
        start_logits, end_logits: float [len(features), seq_len], row i for feature i.
        n_best: texts kept per question.
        max_answer_len: longest answer, in tokens.
        null_threshold: v2.0, predict "" when null_odds exceeds it.
        version_2: decode with no-answer; None follows `dataset.version`.

    Questions without features (dropped by `featurize(training=True)`) get no prediction.
    """
    _check_decoding(n_best, max_answer_len)
    start_logits = np.asarray(start_logits)
    end_logits = np.asarray(end_logits)
    expected = (len(features), features.seq_len)
    if start_logits.shape != expected or end_logits.shape != expected:
        raise ValueError(
            f"logits of shape {start_logits.shape} / {end_logits.shape}, expected {expected}"
        )
    with_null = dataset.is_v2 if version_2 is None else version_2
    out = SquadPredictions(null_odds={} if with_null else None)
    for example, rows in zip(dataset.examples, features.rows_by_example(len(dataset)), strict=True):
        if len(rows) == 0:
            continue
        candidates = []
        for row in rows:
            candidates += bert_candidates(
                features, int(row), start_logits[row], end_logits[row],
                n_best=n_best, max_answer_len=max_answer_len,
            )  # fmt: skip
        null = bert_null(rows, start_logits, end_logits) if with_null else None
        text, nbest, odds = answer_example(
            example, features, candidates, n_best=n_best, null=null, null_threshold=null_threshold
        )
        out.predictions[example.qid] = text
        out.nbest[example.qid] = nbest
        if out.null_odds is not None:
            out.null_odds[example.qid] = odds
    return out


def valid_span(
    features: SquadFeatures, row: int, start: int, end: int, max_answer_len: int
) -> bool:
    """Whether window positions start..end of feature `row` may be an answer (rules above)."""
    return (
        features.is_context(row, start)
        and features.is_context(row, end)
        and start <= end
        and end - start + 1 <= max_answer_len
        and bool(features.token_is_max_context[row, start])
    )


def bert_candidates(
    features: SquadFeatures,
    row: int,
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    *,
    n_best: int = N_BEST,
    max_answer_len: int = MAX_ANSWER_LEN,
) -> list[SpanCandidate]:
    """The `n_best` best valid spans of one window by start_logit + end_logit.

    `start_logits`/`end_logits` are this feature's [seq_len] rows. Ties go to the earlier start,
    then the earlier end.
    """
    off, n = int(features.doc_offset[row]), int(features.doc_length[row])
    starts = np.asarray(start_logits[off : off + n], dtype=np.float64)
    ends = np.asarray(end_logits[off : off + n], dtype=np.float64)
    width = min(max_answer_len, n)
    # scores[a, d] = score of the span a .. a + d (context-relative); invalid cells are -inf.
    last = np.arange(n)[:, None] + np.arange(width)[None, :]
    scores = starts[:, None] + ends[np.minimum(last, n - 1)]
    scores[last >= n] = -np.inf
    scores[~features.token_is_max_context[row, off : off + n]] = -np.inf
    flat = scores.ravel()
    valid = np.flatnonzero(np.isfinite(flat))
    if len(valid) > n_best:
        # Keep every cell tied with the n_best-th score so the tie-break below is exact.
        cut = np.partition(flat[valid], len(valid) - n_best)[len(valid) - n_best]
        valid = valid[flat[valid] >= cut]
    # Cell index a * width + d orders by start, then by end: a stable sort keeps that on ties.
    valid = valid[np.argsort(-flat[valid], kind="stable")][:n_best]
    out = []
    for cell in valid:
        a, d = divmod(int(cell), width)
        out.append(
            SpanCandidate(
                row,
                off + a,
                off + a + d,
                float(starts[a]),
                float(ends[a + d]),
                float(starts[a]) + float(ends[a + d]),
            )
        )
    return out


def bert_null(
    rows: Sequence[int] | np.ndarray, start_logits: np.ndarray, end_logits: np.ndarray
) -> SpanCandidate:
    """The no-answer candidate: the window with the LOWEST [CLS] score (the reference's choice:
    the window most sure that an answer exists decides)."""
    best = None
    for row in rows:
        row = int(row)
        s, e = float(start_logits[row][0]), float(end_logits[row][0])
        if best is None or s + e < best.score:
            best = SpanCandidate(row, 0, 0, s, e, s + e)
    if best is None:
        raise ValueError("a question needs at least one feature")
    return best


def answer_example(
    example: SquadExample,
    features: SquadFeatures,
    candidates: Sequence[SpanCandidate],
    *,
    n_best: int = N_BEST,
    null: SpanCandidate | None = None,
    null_threshold: float = NULL_THRESHOLD,
) -> tuple[str, list[dict], float | None]:
    """Merge one question's candidates (all windows) into its n-best list and answer.

    Args:
        example: the question (its context gives the texts).
        features: where the candidates' rows live.
        candidates: valid spans of any of the question's windows, any order.
        n_best: texts kept.
        null: v2.0 no-answer candidate (score = the null score), or None for v1.1.
        null_threshold: v2.0, answer "" when null.score - best non-null score exceeds it.

    Returns:
        (answer text, n-best entries best first, null_odds or None without `null`). Without
        any span candidate the answer is "" (and null_odds is +inf with `null`).
    """
    ranked = list(candidates) + ([null] if null is not None else [])
    # Stable: among equal scores the earlier window / position stays first (null comes last).
    ranked.sort(key=lambda c: c.score, reverse=True)
    entries: list[dict] = []
    seen: set[str] = set()
    best_span: dict | None = None
    windows: dict[int, tuple[int, np.ndarray]] = {}  # row -> (doc_offset, token chars)
    for cand in ranked:
        is_null = cand is null
        if not is_null and len(entries) >= n_best and best_span is not None:
            break
        entry = _entry(example, features, cand, is_null, windows)
        if entry["text"] in seen:
            continue
        if best_span is None and not is_null:
            best_span = entry
        if len(entries) < n_best:
            seen.add(entry["text"])
            entries.append(entry)
    if null is not None and "" not in seen:
        entries.append(_entry(example, features, null, True, windows))
    _add_probabilities(entries)
    odds = None
    if null is None:
        answer = entries[0]["text"] if entries else ""
    elif best_span is None:
        answer, odds = "", math.inf
    else:
        odds = null.score - best_span["score"]
        answer = "" if odds > null_threshold else best_span["text"]
    for entry in entries:
        del entry["score"]
    return answer, entries, odds


def _entry(
    example: SquadExample,
    features: SquadFeatures,
    cand: SpanCandidate,
    is_null: bool,
    windows: dict[int, tuple[int, np.ndarray]],
) -> dict:
    if is_null:
        text, start_char, end_char = "", None, None
    else:
        if cand.feature not in windows:
            windows[cand.feature] = (
                int(features.doc_offset[cand.feature]),
                features.token_chars(cand.feature),
            )
        off, chars = windows[cand.feature]
        start_char, end_char = int(chars[cand.start - off, 0]), int(chars[cand.end - off, 1])
        text = example.context[start_char:end_char]
    return {
        "text": text,
        "probability": 0.0,
        "start_logit": cand.start_logit,
        "end_logit": cand.end_logit,
        "start_char": start_char,
        "end_char": end_char,
        "score": cand.score,
    }


def _add_probabilities(entries: list[dict]) -> None:
    """Softmax over the listed scores (shifted by the maximum for stability)."""
    if not entries:
        return
    top = max(e["score"] for e in entries)
    weights = [math.exp(e["score"] - top) for e in entries]
    total = sum(weights)
    for entry, weight in zip(entries, weights, strict=True):
        entry["probability"] = weight / total


def _check_decoding(n_best: int, max_answer_len: int) -> None:
    if n_best < 1:
        raise ValueError(f"n_best must be at least 1, not {n_best}")
    if max_answer_len < 1:
        raise ValueError(f"max_answer_len must be at least 1, not {max_answer_len}")
