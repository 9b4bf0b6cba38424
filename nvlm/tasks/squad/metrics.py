"""SQuAD exact match and F1 with the semantics of the official v1.1 and v2.0 evaluation scripts.

Written from their specification (Rajpurkar et al. 2016, 2018; the scripts published with the
data set), not copied. On any predictions file the official scripts accept, the numbers are the
same, down to the float: the sums run in the same (file) order with the same operations.

Shared: an answer is normalized by lower-casing, deleting the ASCII punctuation of
`string.punctuation`, replacing the whole words a / an / the by a space, and joining the
whitespace-split words with single spaces. Exact match compares normalized strings; F1 compares
the bags of normalized words. A question scores its best over its gold answers.

v1.1: scores are percentages over ALL questions; a question without a prediction scores 0 (the
official script prints a message; `missing_predictions` lists them for the caller to report).
F1 is 0 when no word is shared, even when both sides normalize to nothing.

v2.0: gold answers that normalize to "" are dropped, and a question left without gold answers
has the gold answer "" (unanswerable), so it scores 1 only for a prediction that normalizes to
"". F1 is 1 when both sides are empty, 0 when just one is. With `null_odds` (the official
`--na-prob-file`), a question whose value exceeds `na_prob_thresh` (official default 1.0)
counts as answered "no answer", and `best_exact` / `best_f1` report the best score over all
thresholds with the threshold that reaches it (official `find_best_thresh`, which also counts
non-empty predictions on unanswerable questions as errors). The breakdown keys `HasAns_*` and
`NoAns_*` appear when the file has such questions, `best_*` when `null_odds` is given.

One decision where the official v2.0 script stops with a KeyError (a question missing from the
predictions): like v1.1, it scores 0 in every total and never counts as "no answer".
"""

from __future__ import annotations

import os
import re
import string
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

from nvlm import outputs
from nvlm.errors import UserError

_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")  # str patterns match Unicode word boundaries

Gold = Mapping[str, Sequence[str]]


def normalize_answer(text: str) -> str:
    """Lower case, no ASCII punctuation, no articles, single spaces (both versions)."""
    lowered = text.lower()
    kept = "".join(ch for ch in lowered if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", kept).split())


def exact_match(prediction: str, gold: str) -> int:
    """1 when the normalized strings are equal, else 0."""
    return int(normalize_answer(prediction) == normalize_answer(gold))


def f1_v1(prediction: str, gold: str) -> float:
    """Word-bag F1 of v1.1: 0 when nothing is shared (also when both are empty)."""
    return _f1(normalize_answer(prediction).split(), normalize_answer(gold).split())


def f1_v2(prediction: str, gold: str) -> float:
    """Word-bag F1 of v2.0: an empty side scores 1 if the other is empty too, else 0."""
    pred_words = normalize_answer(prediction).split()
    gold_words = normalize_answer(gold).split()
    if not pred_words or not gold_words:
        return float(pred_words == gold_words)
    return _f1(pred_words, gold_words)


def _f1(pred_words: list[str], gold_words: list[str]) -> float:
    shared = sum((Counter(pred_words) & Counter(gold_words)).values())
    if shared == 0:
        return 0.0
    precision = shared / len(pred_words)
    recall = shared / len(gold_words)
    return 2 * precision * recall / (precision + recall)


def missing_predictions(gold: Gold, predictions: Mapping[str, str]) -> list[str]:
    """Question ids of `gold` without a prediction (they score 0), in file order."""
    return [qid for qid in gold if qid not in predictions]


def evaluate_v1(gold: Gold, predictions: Mapping[str, str]) -> dict[str, float]:
    """Official v1.1 scores: {"exact_match": %, "f1": %}.

    Args:
        gold: {qid: [gold answer texts]} in file order (`SquadDataset.gold_answers()`).
        predictions: {qid: answer text}; ids not in `gold` are ignored.
    """
    _check(gold, predictions)
    exact = f1 = 0.0
    for qid, answers in gold.items():
        if not answers:
            raise UserError(
                f"question {qid!r} has no gold answers; SQuAD v1.1 scoring needs one",
                hint="score a v2.0 file with --version 2.0",
            )
        if qid not in predictions:
            continue
        pred = predictions[qid]
        exact += max(exact_match(pred, answer) for answer in answers)
        f1 += max(f1_v1(pred, answer) for answer in answers)
    total = len(gold)
    return {"exact_match": 100.0 * exact / total, "f1": 100.0 * f1 / total}


def evaluate_v2(
    gold: Gold,
    predictions: Mapping[str, str],
    null_odds: Mapping[str, float] | None = None,
    na_prob_thresh: float = 1.0,
) -> dict[str, float | int]:
    """Official v2.0 scores (keys and order as the official script prints them).

    Args:
        gold: {qid: [gold answer texts]} in file order; [] for an unanswerable question.
        predictions: {qid: answer text}, "" for "no answer".
        null_odds: {qid: no-answer score} (`null_odds.json`), or None.
        na_prob_thresh: a question whose null_odds exceeds this counts as "no answer".
    """
    _check(gold, predictions)
    has_answer = {qid: bool(answers) for qid, answers in gold.items()}
    exact_raw: dict[str, float] = {}
    f1_raw: dict[str, float] = {}
    for qid, answers in gold.items():
        if qid not in predictions:
            continue
        golds = [a for a in answers if normalize_answer(a)] or [""]
        pred = predictions[qid]
        exact_raw[qid] = max(exact_match(pred, answer) for answer in golds)
        f1_raw[qid] = max(f1_v2(pred, answer) for answer in golds)

    odds = {qid: 0.0 for qid in predictions} if null_odds is None else null_odds
    for qid in exact_raw:
        if qid not in odds:
            raise UserError(
                f"null odds lack question {qid!r}",
                hint="pass the null_odds.json of these predictions",
            )
    exact = _thresholded(exact_raw, odds, has_answer, na_prob_thresh)
    f1 = _thresholded(f1_raw, odds, has_answer, na_prob_thresh)

    out: dict[str, float | int] = _totals("", exact, f1, list(gold))
    has_ans = [qid for qid, flag in has_answer.items() if flag]
    no_ans = [qid for qid, flag in has_answer.items() if not flag]
    if has_ans:
        out.update(_totals("HasAns_", exact, f1, has_ans))
    if no_ans:
        out.update(_totals("NoAns_", exact, f1, no_ans))
    if null_odds is not None:
        best, thresh = best_threshold(predictions, exact_raw, null_odds, has_answer, len(gold))
        out["best_exact"], out["best_exact_thresh"] = best, thresh
        best, thresh = best_threshold(predictions, f1_raw, null_odds, has_answer, len(gold))
        out["best_f1"], out["best_f1_thresh"] = best, thresh
    return out


def _thresholded(
    raw: dict[str, float], odds: Mapping[str, float], has_answer: dict[str, bool], thresh: float
) -> dict[str, float]:
    # Above the threshold the question counts as answered "no answer", whatever the text was.
    return {
        qid: float(not has_answer[qid]) if odds[qid] > thresh else score
        for qid, score in raw.items()
    }


def _totals(prefix: str, exact: dict, f1: dict, qids: list[str]) -> dict[str, float | int]:
    # A missing prediction adds nothing (0) but counts in the total.
    total = len(qids)
    return {
        f"{prefix}exact": 100.0 * sum(exact[q] for q in qids if q in exact) / total,
        f"{prefix}f1": 100.0 * sum(f1[q] for q in qids if q in f1) / total,
        f"{prefix}total": total,
    }


def best_threshold(
    predictions: Mapping[str, str],
    scores: Mapping[str, float],
    null_odds: Mapping[str, float],
    has_answer: Mapping[str, bool],
    total: int,
) -> tuple[float, float]:
    """Best score (%) over no-answer thresholds, and the threshold (official semantics).

    Sweep the questions by increasing null odds; a threshold at a question's value answers it
    and every question before it (the rest answer "no answer"). Starting from "all no answer"
    (the unanswerable questions right), answering an answerable question gains its score and
    answering an unanswerable one with a non-empty text loses 1. Ties in null odds keep the
    order of `null_odds`, as Python's stable sort does in the official script.
    """
    current = sum(1 for qid in scores if not has_answer[qid])
    best, best_thresh = current, 0.0
    for qid in sorted(null_odds, key=null_odds.__getitem__):
        if qid not in scores:
            continue
        if has_answer[qid]:
            current += scores[qid]
        elif predictions[qid]:
            current -= 1
        if current > best:
            best, best_thresh = current, null_odds[qid]
    return 100.0 * best / total, best_thresh


def evaluate(
    gold: Gold,
    predictions: Mapping[str, str],
    version: str,
    null_odds: Mapping[str, float] | None = None,
) -> dict[str, float | int]:
    """`evaluate_v1` for version "1.1", `evaluate_v2` for "2.0"."""
    if version == "1.1":
        return evaluate_v1(gold, predictions)
    if version == "2.0":
        return evaluate_v2(gold, predictions, null_odds)
    raise UserError(f"unknown SQuAD version {version!r}", hint="use 1.1 or 2.0")


def load_predictions(path: str | os.PathLike[str]) -> dict[str, str]:
    """Read a predictions.json: {qid: answer text}."""
    return _load_json_map(path, "predictions", (str,))


def load_null_odds(path: str | os.PathLike[str]) -> dict[str, float]:
    """Read a null_odds.json (the official `--na-prob-file`): {qid: number}."""
    return _load_json_map(path, "null odds", (int, float))


def _load_json_map(path: str | os.PathLike[str], what: str, kinds: tuple[type, ...]) -> dict:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what} file not found: {path}")
    obj = outputs.read_json(path, object_only=False)
    if not isinstance(obj, dict):
        raise UserError(f"{path}: {what} must be a JSON object keyed by question id")
    for qid, value in obj.items():
        if not isinstance(value, kinds) or isinstance(value, bool):
            raise UserError(f"{path}: the {what} value of question {qid!r} is {value!r}")
    return obj


def _check(gold: Gold, predictions: Mapping[str, str]) -> None:
    if not gold:
        raise UserError("no gold questions to score")
    for qid in gold:
        value = predictions.get(qid, "")
        if not isinstance(value, str):
            raise UserError(f"the prediction for question {qid!r} is {value!r}, not a string")
