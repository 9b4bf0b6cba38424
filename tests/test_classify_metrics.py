"""Classification/regression metrics against values worked out by hand and against independent
definitions written here (Matthews from one-hot covariances, Spearman from ranks by counting),
since neither scikit-learn nor scipy is installed."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest

from nvlm.errors import UserError
from nvlm.tasks.classify.metrics import (
    GLUE_METRICS,
    accuracy,
    average_ranks,
    binary_f1,
    classification_report,
    confusion_matrix,
    glue_metrics,
    macro_f1,
    matthews_corrcoef,
    pearson,
    regression_report,
    spearman,
)

approx = lambda x: pytest.approx(x, rel=1e-12, abs=1e-12)  # noqa: E731


def _binary(tp: int, fn: int, fp: int, tn: int) -> tuple[list[int], list[int]]:
    """Labels and predictions with the given counts (positive = id 1)."""
    labels = [1] * tp + [1] * fn + [0] * fp + [0] * tn
    preds = [1] * tp + [0] * fn + [1] * fp + [0] * tn
    return labels, preds


def _from_matrix(rows: list[list[int]]) -> tuple[list[int], list[int]]:
    labels, preds = [], []
    for t, row in enumerate(rows):
        for p, count in enumerate(row):
            labels += [t] * count
            preds += [p] * count
    return labels, preds


# --- independent reference definitions ------------------------------------------------------
def _mcc_by_covariance(labels, preds, k):
    """Gorodkin's R_K as cov(X, Y) / sqrt(cov(X, X) cov(Y, Y)) of the one-hot matrices X, Y,
    where cov(A, B) = sum over classes of the covariance of column A_k with column B_k."""
    x = np.eye(k)[labels]
    y = np.eye(k)[preds]
    x = x - x.mean(axis=0)
    y = y - y.mean(axis=0)
    cov = lambda a, b: float(np.sum(a * b))  # noqa: E731
    denom = math.sqrt(cov(x, x) * cov(y, y))
    return cov(x, y) / denom if denom else 0.0


def _ranks_by_counting(values):
    """Rank = 1 + (number of smaller values) + (number of other equal values) / 2."""
    return [1 + sum(w < v for w in values) + (sum(w == v for w in values) - 1) / 2 for v in values]


def _pearson_plain(x, y):
    n = len(x)
    mx, my = sum(x) / n, sum(y) / n
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True))
    sxx = sum((a - mx) ** 2 for a in x)
    syy = sum((b - my) ** 2 for b in y)
    return sxy / math.sqrt(sxx * syy)


# --- binary -------------------------------------------------------------------------------
def test_binary_counts_tp6_fn2_fp1_tn11():
    labels, preds = _binary(tp=6, fn=2, fp=1, tn=11)
    assert confusion_matrix(labels, preds).tolist() == [[11, 1], [2, 6]]  # rows true 0, 1
    assert accuracy(labels, preds) == approx(17 / 20)  # 6 + 11 right out of 20
    # F1 = 2TP / (2TP + FP + FN) = 12 / 15; also 2PR/(P+R) with P = 6/7, R = 6/8.
    assert binary_f1(labels, preds) == approx(0.8)
    p, r = 6 / 7, 6 / 8
    assert binary_f1(labels, preds) == approx(2 * p * r / (p + r))
    # MCC = (TP*TN - FP*FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN))
    #     = (66 - 2) / sqrt(7 * 8 * 12 * 13) = 64 / sqrt(8736) = 64 / 93.4666 = 0.684737
    assert matthews_corrcoef(labels, preds) == approx(64 / math.sqrt(8736))
    assert matthews_corrcoef(labels, preds) == pytest.approx(0.684737, abs=1e-6)
    # Class 0: TP = 11, FP = 2 (the FN of class 1), FN = 1 -> F1 = 22 / 25; macro = mean.
    assert macro_f1(labels, preds) == approx((0.8 + 0.88) / 2)


def test_perfect_and_inverse_binary_predictions():
    labels = [0, 1, 1, 0, 1]
    inverse = [1 - y for y in labels]
    assert (accuracy(labels, labels), binary_f1(labels, labels)) == (1.0, 1.0)
    assert matthews_corrcoef(labels, labels) == approx(1.0)
    assert macro_f1(labels, labels) == approx(1.0)
    assert (accuracy(labels, inverse), binary_f1(labels, inverse)) == (0.0, 0.0)
    assert matthews_corrcoef(labels, inverse) == approx(-1.0)


def test_f1_without_positive_predictions_is_zero():
    assert binary_f1([1, 1, 0], [0, 0, 0]) == 0.0  # precision 0/0 -> 0, recall 0
    assert binary_f1([0, 0, 0], [0, 0, 0]) == 0.0  # no positive anywhere: 0, not 0/0
    assert binary_f1([0, 0, 1], [1, 1, 0]) == 0.0  # positives on both sides, never together


def test_f1_positive_class_is_label_id_1_unless_told():
    labels, preds = [1, 0, 0, 0], [1, 1, 0, 0]
    assert binary_f1(labels, preds) == approx(2 / 3)  # class 1: TP 1, FP 1, FN 0
    assert binary_f1(labels, preds, positive=0) == approx(0.8)  # class 0: TP 2, FP 0, FN 1


def test_mcc_is_zero_when_a_side_has_one_class():
    # All predictions one class: (n^2 - sum p_k^2) = 0, 0/0 defined as 0.
    assert matthews_corrcoef([0, 1, 1, 0], [1, 1, 1, 1]) == 0.0
    assert matthews_corrcoef([1, 1, 1], [1, 0, 1]) == 0.0  # all labels one class
    assert matthews_corrcoef([2, 2], [2, 2]) == 0.0


# --- multi-class --------------------------------------------------------------------------
def test_multiclass_mcc_by_hand():
    rows = [[3, 1, 0], [0, 2, 1], [1, 0, 2]]
    labels, preds = _from_matrix(rows)
    assert confusion_matrix(labels, preds).tolist() == rows
    # n = 10, trace c = 7, true counts t = (4, 3, 3), predicted counts p = (4, 3, 3):
    # (c n - p.t) / sqrt((n^2 - p.p)(n^2 - t.t)) = (70 - 34) / sqrt(66 * 66) = 6/11.
    assert matthews_corrcoef(labels, preds) == approx(6 / 11)
    assert matthews_corrcoef(labels, preds) == approx(_mcc_by_covariance(labels, preds, 3))


def test_mcc_agrees_with_the_covariance_definition_on_every_small_case():
    # Every labelling of 5 examples over 3 classes against a fixed prediction sequence and
    # some random ones: the two definitions agree (0 where the covariance one divides by 0).
    rng = np.random.default_rng(7)
    preds_list = [[0, 1, 2, 0, 1], [2, 2, 2, 2, 2], *rng.integers(0, 3, size=(5, 5)).tolist()]
    for preds in preds_list:
        for labels in itertools.product(range(3), repeat=5):
            got = matthews_corrcoef(list(labels), preds, num_classes=3)
            assert got == pytest.approx(_mcc_by_covariance(list(labels), preds, 3), abs=1e-12)


def test_macro_f1_leaves_out_classes_seen_on_neither_side():
    # Five classes in the label set; only 0, 1 and 3 occur.
    labels, preds = [0, 0, 1, 1], [0, 1, 1, 3]
    # class 0: TP1 FP0 FN1 -> 2/3; class 1: TP1 FP1 FN1 -> 1/2; class 3 (predicted, never
    # true): TP0 FP1 -> 0; classes 2 and 4 are left out, so the mean is over 3 classes.
    assert macro_f1(labels, preds, num_classes=5) == approx((2 / 3 + 1 / 2 + 0) / 3)


def test_class_never_predicted_has_precision_and_f1_zero():
    report = classification_report([0, 1, 2], [0, 2, 2], ["neg", "neu", "pos"])
    assert report["per_class"]["neu"] == {
        "precision": 0.0,
        "recall": 0.0,
        "f1": 0.0,
        "support": 1,
    }
    # F1: neg 1, neu 0, pos 2/3 (P 1/2, R 1) -> macro (1 + 0 + 2/3) / 3, in percent.
    assert report["macro_f1"] == approx(100 * (5 / 3) / 3)
    assert report["per_class"]["pos"]["precision"] == approx(50.0)


def test_classification_report_layout_and_units():
    labels, preds = [0, 1, 1, 2, 2, 2], [0, 1, 2, 2, 2, 0]
    report = classification_report(labels, preds, ["a", "b", "c", "d"])
    assert report["accuracy"] == approx(100 * 4 / 6)
    assert report["confusion_matrix"] == {
        "labels": ["a", "b", "c", "d"],
        "rows": [[1, 0, 0, 0], [0, 1, 1, 0], [1, 0, 2, 0], [0, 0, 0, 0]],
    }
    assert list(report["per_class"]) == ["a", "b", "c", "d"]
    # a: P 1/2 R 1; b: P 1 R 1/2; c: P 2/3 R 2/3; d never seen: zeros and support 0.
    assert report["per_class"]["a"]["recall"] == approx(100.0)
    assert report["per_class"]["b"]["f1"] == approx(100 * 2 / 3)
    assert report["per_class"]["c"]["support"] == 3
    assert report["per_class"]["d"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert report["macro_f1"] == approx(100 * (2 / 3 + 2 / 3 + 2 / 3) / 3)  # d left out
    json.dumps(report, allow_nan=False)  # plain Python numbers: the --json output works


def test_classification_report_refuses_ids_outside_the_label_set():
    with pytest.raises(ValueError, match=r"^a class id is >= the number of classes \(2\)$"):
        classification_report([0, 2], [0, 1], ["neg", "pos"])


# --- regression ---------------------------------------------------------------------------
def test_pearson_by_hand():
    # x = (1,2,3), y = (1,2,4): Sxy = 3, Sxx = 2, Syy = 14/3 -> r = 3 / sqrt(28/3) = sqrt(27/28).
    assert pearson([1, 2, 3], [1, 2, 4]) == approx(math.sqrt(27 / 28))
    assert pearson([1, 2, 3], [3, 2, 1]) == approx(-1.0)


def test_spearman_with_ties_uses_average_ranks():
    x, y = [1, 2, 2, 3], [1, 3, 2, 4]
    assert average_ranks(x).tolist() == [1.0, 2.5, 2.5, 4.0]
    # ranks (1, 2.5, 2.5, 4) vs (1, 3, 2, 4): Sxy = 4.5, Sxx = 4.5, Syy = 5 -> sqrt(0.9).
    assert spearman(x, y) == approx(math.sqrt(0.9))
    assert average_ranks([3.0, 1.0, 3.0, 3.0, 0.5]).tolist() == [4.0, 2.0, 4.0, 4.0, 1.0]


def test_spearman_agrees_with_ranks_by_counting():
    rng = np.random.default_rng(3)
    for _ in range(50):
        x = rng.integers(0, 4, size=9).astype(float).tolist()  # many ties
        y = rng.normal(size=9).round(1).tolist()
        rx, ry = _ranks_by_counting(x), _ranks_by_counting(y)
        assert average_ranks(x).tolist() == rx
        expected = _pearson_plain(rx, ry) if len(set(x)) > 1 and len(set(y)) > 1 else 0.0
        assert spearman(x, y) == pytest.approx(expected, abs=1e-12)


def test_spearman_is_one_for_any_increasing_relation():
    assert spearman([1, 2, 3, 4], [1, 4, 9, 100]) == approx(1.0)
    assert pearson([1, 2, 3, 4], [1, 4, 9, 100]) < 0.9


def test_correlations_of_a_constant_side_are_zero():
    assert pearson([1.0, 2.0, 3.0], [2.5, 2.5, 2.5]) == 0.0
    assert spearman([2.5, 2.5, 2.5], [1.0, 2.0, 3.0]) == 0.0
    assert pearson([4.0], [1.0]) == 0.0  # one example: constant on both sides
    report = regression_report([1.0, 2.0, 3.0], [2.0, 2.0, 2.0])
    assert report == {"pearson": 0.0, "spearman": 0.0, "mse": approx(2 / 3)}


def test_regression_report_units():
    report = regression_report([1.0, 2.0, 3.0], [1.0, 2.0, 4.0])
    assert report["pearson"] == approx(100 * math.sqrt(27 / 28))
    assert report["spearman"] == approx(100.0)
    assert report["mse"] == approx(1 / 3)  # (0 + 0 + 1) / 3, in the target's unit squared


def test_non_finite_regression_values_are_refused():
    with pytest.raises(ValueError, match=r"^regression values must be finite \(a NaN or inf"):
        pearson([1.0, float("nan")], [1.0, 2.0])


# --- GLUE ---------------------------------------------------------------------------------
def test_glue_metrics_per_task():
    labels, preds = _binary(tp=6, fn=2, fp=1, tn=11)
    assert glue_metrics("cola", labels, preds) == {"mcc": approx(100 * 64 / math.sqrt(8736))}
    for task in ("mrpc", "qqp"):
        assert glue_metrics(task, labels, preds) == {
            "accuracy": approx(85.0),
            "f1": approx(80.0),
            "combined": approx(82.5),  # GLUE's task score: unweighted mean of its metrics
        }
    for task in ("sst2", "qnli", "rte", "wnli"):
        assert glue_metrics(task, labels, preds) == {"accuracy": approx(85.0)}
    assert glue_metrics("MNLI", [0, 1, 2, 2], [0, 1, 1, 2]) == {"accuracy": approx(75.0)}
    stsb = glue_metrics("stsb", [1.0, 2.0, 2.0, 3.0], [1.0, 3.0, 2.0, 4.0])
    pearson_r = _pearson_plain([1, 2, 2, 3], [1, 3, 2, 4])
    assert stsb == {
        "pearson": approx(100 * pearson_r),
        "spearman": approx(100 * math.sqrt(0.9)),
        "combined": approx(50 * (pearson_r + math.sqrt(0.9))),
    }
    for task, keys in GLUE_METRICS.items():
        sample = ([0.5, 1.5], [0.5, 1.0]) if task == "stsb" else ([0, 1], [0, 1])
        assert tuple(glue_metrics(task, *sample)) == keys


def test_glue_binary_tasks_refuse_a_third_class():
    with pytest.raises(ValueError, match=r"^mrpc is a binary task: class ids must be 0 or 1$"):
        glue_metrics("mrpc", [0, 1, 2], [0, 1, 1])


def test_unknown_glue_task_names_the_choices():
    with pytest.raises(UserError) as err:
        glue_metrics("sst5", [0], [0])
    assert str(err.value) == (
        "unknown GLUE task 'sst5' (use one of cola, sst2, mrpc, stsb, qqp, mnli, qnli, rte, wnli)"
    )


# --- bad input ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "call",
    [
        lambda: accuracy([], []),
        lambda: matthews_corrcoef([], []),
        lambda: classification_report([], [], ["a", "b"]),
        lambda: glue_metrics("cola", [], []),
    ],
)
def test_empty_input_is_a_clear_error(call):
    with pytest.raises(ValueError, match=r"^class ids: no examples to score \(empty labels"):
        call()


def test_empty_regression_input_is_a_clear_error():
    with pytest.raises(ValueError, match=r"^regression values: no examples to score"):
        regression_report([], [])


def test_length_mismatch_and_non_integer_ids_are_refused():
    with pytest.raises(ValueError, match=r"^class ids: 3 labels but 2 predictions$"):
        accuracy([0, 1, 1], [0, 1])
    with pytest.raises(ValueError, match=r"^predictions must be integer class ids, got dtype"):
        accuracy([0, 1], [0.0, 1.0])
    with pytest.raises(ValueError, match=r"^labels hold a negative class id \(-1\)$"):
        accuracy([-1, 1], [0, 1])
