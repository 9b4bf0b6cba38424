"""SQuAD EM/F1 against values worked out by hand from the official scripts' rules."""

from __future__ import annotations

import json

import pytest

from nvlm.errors import UserError
from nvlm.tasks.squad.metrics import (
    evaluate,
    evaluate_v1,
    evaluate_v2,
    exact_match,
    f1_v1,
    f1_v2,
    load_null_odds,
    load_predictions,
    missing_predictions,
    normalize_answer,
)

approx = lambda x: pytest.approx(x, rel=1e-12, abs=1e-12)  # noqa: E731


@pytest.mark.parametrize(
    ("text", "normalized"),
    [
        ("The  Cat!", "cat"),
        ("an apple a day", "apple day"),
        ("Theatre", "theatre"),  # articles only as whole words
        ("A.B.C.", "abc"),  # punctuation goes before articles are looked for
        ("the-end", "theend"),  # ... so a hyphen glues "the" to its neighbour
        ("l'Amour", "lamour"),
        ("\tA\nB ", "b"),
        ("Über “quotes” – dash", "über “quotes” – dash"),  # only ASCII punctuation is removed
        ("", ""),
    ],
)
def test_normalize_answer(text, normalized):
    assert normalize_answer(text) == normalized


def test_pair_scores():
    assert exact_match("the Eiffel Tower", "Eiffel tower.") == 1
    assert f1_v1("the Eiffel Tower", "Eiffel tower.") == 1.0
    assert exact_match("Eiffel", "Eiffel Tower") == 0
    assert f1_v1("Eiffel", "Eiffel Tower") == approx(2 * 1 * 0.5 / 1.5)  # P=1, R=1/2
    # Bags, not sets: "tower" twice in the prediction matches once.  P=2/3, R=1.
    assert f1_v1("tower tower eiffel", "eiffel tower") == approx(0.8)
    # Empty sides: v1.1 F1 needs a shared word; v2.0 scores agreement on "no answer".
    assert (exact_match("", "x"), f1_v1("", "x"), f1_v2("", "x")) == (0, 0.0, 0.0)
    assert (exact_match("", ""), f1_v1("", ""), f1_v2("", "")) == (1, 0.0, 1.0)
    assert (exact_match("the", "a"), f1_v1("the", "a"), f1_v2("the", "a")) == (1, 0.0, 1.0)


def test_v1_scores_with_multiple_golds_and_a_missing_prediction():
    gold = {
        "q1": ["Eiffel Tower", "the Eiffel Tower"],
        "q2": ["Paris"],
        "q3": ["1889", "in 1889"],
        "q4": ["Gustave Eiffel"],
    }
    predictions = {"q1": "eiffel tower!", "q2": "Paris, France", "q3": "in 1889", "zz": "extra"}
    # q1 exact; q2 P=1/2 R=1 -> 2/3; q3 exact on its 2nd gold; q4 missing -> 0.
    assert missing_predictions(gold, predictions) == ["q4"]
    scores = evaluate_v1(gold, predictions)
    assert list(scores) == ["exact_match", "f1"]
    assert scores["exact_match"] == approx(100.0 * 2 / 4)
    assert scores["f1"] == approx(100.0 * (1 + 2 / 3 + 1 + 0) / 4)


GOLD_V2 = {
    "h1": ["Blue River"],
    "h2": ["Mara Venn", "Venn"],
    "h3": ["."],  # answerable, but its only gold normalizes to "" -> gold [""]
    "h4": ["seven"],
    "n1": [],
    "n2": [],
    "n3": [],
}
PRED_V2 = {
    "h1": "blue river",  # 1, 1
    "h2": "Dr. Mara Venn",  # EM 0; F1 max(P=2/3 R=1 -> 0.8, P=1/3 R=1 -> 0.5) = 0.8
    "h3": "",  # 1, 1
    "h4": "",  # 0, 0
    "n1": "",  # 1, 1
    "n2": "something",  # 0, 0
    "n3": "The",  # normalizes to "": 1, 1 (but it is a non-empty text for best_*)
}


def test_v2_scores_without_null_odds():
    scores = evaluate_v2(GOLD_V2, PRED_V2)
    assert list(scores) == [
        "exact", "f1", "total",
        "HasAns_exact", "HasAns_f1", "HasAns_total",
        "NoAns_exact", "NoAns_f1", "NoAns_total",
    ]  # fmt: skip
    assert scores["exact"] == approx(100.0 * 4 / 7)
    assert scores["f1"] == approx(100.0 * 4.8 / 7)
    assert scores["total"] == 7
    assert scores["HasAns_exact"] == approx(50.0)
    assert scores["HasAns_f1"] == approx(100.0 * 2.8 / 4)
    assert scores["HasAns_total"] == 4
    assert scores["NoAns_exact"] == approx(100.0 * 2 / 3)
    assert scores["NoAns_f1"] == approx(100.0 * 2 / 3)
    assert scores["NoAns_total"] == 3


def test_v2_null_odds_threshold_and_best_thresholds():
    odds = {"h1": -2.0, "h2": 0.5, "h3": 3.0, "h4": 1.5, "n1": 2.0, "n2": 1.8, "n3": 2.5}
    scores = evaluate_v2(GOLD_V2, PRED_V2, odds)
    # Above 1.0 (official default) a question counts as "no answer": h3, h4 -> 0; n1, n2, n3 -> 1.
    assert scores["exact"] == approx(100.0 * (1 + 0 + 0 + 0 + 1 + 1 + 1) / 7)
    assert scores["f1"] == approx(100.0 * (1 + 0.8 + 0 + 0 + 1 + 1 + 1) / 7)
    assert scores["HasAns_exact"] == approx(25.0)
    assert scores["HasAns_f1"] == approx(100.0 * 1.8 / 4)
    assert scores["NoAns_exact"] == approx(100.0) and scores["NoAns_f1"] == approx(100.0)
    # Sweep by odds h1 h2 h4 n2 n1 n3 h3 from 3 (all unanswerable right), raw scores:
    # exact 3 -> h1 4 -> 4 -> 4 -> n2 "something" 3 -> n1 "" 3 -> n3 "The" 2 -> h3 3: best 4 @ -2
    # f1    3 -> h1 4 -> h2 4.8 -> 4.8 -> 3.8 -> 3.8 -> 2.8 -> 3.8:               best 4.8 @ 0.5
    assert scores["best_exact"] == approx(100.0 * 4 / 7)
    assert scores["best_exact_thresh"] == -2.0
    assert scores["best_f1"] == approx(100.0 * 4.8 / 7)
    assert scores["best_f1_thresh"] == 0.5
    assert list(scores)[-4:] == ["best_exact", "best_exact_thresh", "best_f1", "best_f1_thresh"]


def test_best_threshold_ties_follow_the_order_of_the_odds_file():
    gold = {"h1": ["x"], "n1": []}
    preds = {"h1": "x", "n1": "y"}
    # n1 first: 1 -> 0 -> 1, never above the start: 1 of 2.  h1 first: 1 -> 2: 2 of 2.
    assert evaluate_v2(gold, preds, {"n1": 0.0, "h1": 0.0})["best_exact"] == approx(50.0)
    assert evaluate_v2(gold, preds, {"h1": 0.0, "n1": 0.0})["best_exact"] == approx(100.0)


def test_v2_missing_prediction_scores_zero_over_all_questions():
    preds = {k: v for k, v in PRED_V2.items() if k not in ("h1", "n1")}
    scores = evaluate_v2(GOLD_V2, preds)
    assert scores["total"] == 7
    assert scores["exact"] == approx(100.0 * 2 / 7)  # h3, n3
    assert scores["HasAns_f1"] == approx(100.0 * 1.8 / 4)  # h2 0.8 + h3 1
    assert scores["NoAns_exact"] == approx(100.0 / 3)  # n3


def test_v2_without_unanswerable_questions_has_no_noans_keys():
    scores = evaluate_v2({"a": ["x y"]}, {"a": "x"})
    assert "NoAns_total" not in scores and scores["HasAns_total"] == 1
    assert scores["f1"] == approx(100.0 * (2 * 1 * 0.5 / 1.5))


def test_user_errors(tmp_path):
    with pytest.raises(UserError, match="question 'q' has no gold answers"):
        evaluate_v1({"q": []}, {"q": ""})
    with pytest.raises(UserError, match="null odds lack question 'h2'"):
        evaluate_v2(GOLD_V2, PRED_V2, {"h1": 0.0})
    with pytest.raises(UserError, match="prediction for question 'a' is 3"):
        evaluate({"a": ["x"]}, {"a": 3}, "1.1")
    bad = tmp_path / "predictions.json"
    bad.write_text('{"a": "x",\n "b" "y"}')
    with pytest.raises(UserError, match="line 2, column 6"):
        load_predictions(bad)
    bad.write_text(json.dumps({"a": None}))
    with pytest.raises(UserError, match="the predictions value of question 'a' is None"):
        load_predictions(bad)
    good = tmp_path / "null_odds.json"
    good.write_text(json.dumps({"a": 1.5, "b": -2}))
    assert load_null_odds(good) == {"a": 1.5, "b": -2}
