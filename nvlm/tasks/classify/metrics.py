"""Classification and regression metrics, and each GLUE task's official ones, in numpy only.

    from nvlm.tasks.classify.metrics import classification_report, glue_metrics
    glue_metrics("mrpc", [1, 0, 1, 1], [1, 0, 0, 1])
    # {"accuracy": 75.0, "f1": 80.0, "combined": 77.5}
    classification_report([0, 1, 2], [0, 2, 2], ["neg", "neu", "pos"])["macro_f1"]  # 55.56 (%)

Inputs: class labels and predictions are integer ids, the index of the label in the run's label
set (`label_names`); regression targets and predictions are numbers. Both sides have the same,
non-zero length; otherwise a ValueError (a caller's bug: the readers refuse empty files).

Units. The functions of single metrics (`accuracy`, `binary_f1`, `macro_f1`,
`matthews_corrcoef`, `pearson`, `spearman`) return the plain mathematical value: a fraction in
[0, 1], or a correlation in [-1, 1]. The reports (`glue_metrics`, `classification_report`,
`regression_report`) multiply every accuracy, precision, recall, F1 and correlation by 100, as
the GLUE paper and leaderboard print them (CoLA "35.0" is an MCC of 0.350) and as the SQuAD
metrics of nvlm report exact_match and f1 in percent. Counts (support, confusion matrix) are
counts and `mse` is in the target's unit squared: neither is scaled.

Decisions where a metric is undefined (each the value scikit-learn returns by default, so the
numbers match what users compare against, except for the constant-input correlations):
- binary F1: the positive class is label id 1, as the GLUE MRPC and QQP files mark a paraphrase
  or duplicate with "1"; with no positive label and no positive prediction F1 is 0.
- per-class precision of a class never predicted is 0, recall of a class never true is 0, and
  F1 is then 0; macro-F1 averages over the classes that occur in the labels or the predictions:
  a class seen on neither side is left out (its F1 says nothing), one seen on one side counts 0.
- Matthews correlation is 0 when one side has a single class (the formula divides 0 by 0).
- Pearson and Spearman are 0 (scipy returns NaN with a warning) when a side is constant:
  a constant prediction carries no ordering, and 0 keeps the reports valid JSON.
- non-finite values (NaN, inf) are refused with a ValueError.

Sources: the task -> metric table and the averaging of a task's metrics follow Wang et al.,
"GLUE: A Multi-Task Benchmark and Analysis Platform for NLU" (ICLR 2019, sections 3 and 3.4):
CoLA Matthews correlation; MRPC and QQP accuracy and F1; STS-B Pearson and Spearman; SST-2,
QNLI, RTE, WNLI and MNLI (matched and mismatched, each its own dev set) accuracy; "for tasks
with multiple metrics (e.g., accuracy and F1), we use an unweighted average of the metrics as
the score for the task" -> our "combined" key (MRPC, QQP and STS-B). The multi-class MCC is
Gorodkin's R_K (Comput. Biol. Chem. 2004), which the paper uses for its diagnostic set and
scikit-learn's `matthews_corrcoef` computes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from nvlm.errors import UserError

# The keys `glue_metrics` returns for each task, in the order the GLUE paper reports them.
GLUE_METRICS: dict[str, tuple[str, ...]] = {
    "cola": ("mcc",),
    "sst2": ("accuracy",),
    "mrpc": ("accuracy", "f1", "combined"),
    "stsb": ("pearson", "spearman", "combined"),
    "qqp": ("accuracy", "f1", "combined"),
    "mnli": ("accuracy",),
    "qnli": ("accuracy",),
    "rte": ("accuracy",),
    "wnli": ("accuracy",),
}

POSITIVE = 1  # label id of the positive class for binary F1 (GLUE MRPC/QQP "1")


# ---------------------------------------------------------------------------- input checks
def _pair(labels, predictions, what: str) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels)
    p = np.asarray(predictions)
    if y.ndim != 1 or p.ndim != 1:
        raise ValueError(f"{what} must be 1-D sequences, got shapes {y.shape} and {p.shape}")
    if len(y) != len(p):
        raise ValueError(f"{what}: {len(y)} labels but {len(p)} predictions")
    if len(y) == 0:
        raise ValueError(f"{what}: no examples to score (empty labels and predictions)")
    return y, p


def _ids(labels, predictions) -> tuple[np.ndarray, np.ndarray]:
    y, p = _pair(labels, predictions, "class ids")
    for name, arr in (("labels", y), ("predictions", p)):
        if arr.dtype.kind not in "iu":
            raise ValueError(f"{name} must be integer class ids, got dtype {arr.dtype}")
        if arr.min() < 0:
            raise ValueError(f"{name} hold a negative class id ({arr.min()})")
    return y.astype(np.int64), p.astype(np.int64)


def _values(targets, predictions) -> tuple[np.ndarray, np.ndarray]:
    y, p = _pair(targets, predictions, "regression values")
    try:
        y, p = y.astype(np.float64), p.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"regression values must be numbers: {exc}") from None
    if not (np.isfinite(y).all() and np.isfinite(p).all()):
        raise ValueError("regression values must be finite (a NaN or inf was given)")
    return y, p


# ----------------------------------------------------------------------- classification
def confusion_matrix(
    labels: Sequence[int], predictions: Sequence[int], num_classes: int | None = None
) -> np.ndarray:
    """Counts [num_classes, num_classes]: row = true class id, column = predicted class id.

    `num_classes` defaults to the largest id seen + 1; ids at or above it are a ValueError.

        confusion_matrix([0, 1, 1], [0, 1, 0])   # [[1, 0], [1, 1]]
    """
    y, p = _ids(labels, predictions)
    k = int(max(y.max(), p.max())) + 1 if num_classes is None else int(num_classes)
    if y.max() >= k or p.max() >= k:
        raise ValueError(f"a class id is >= the number of classes ({k})")
    # Each (true, predicted) pair is one cell of a flattened k*k matrix.
    return np.bincount(y * k + p, minlength=k * k).reshape(k, k)


def accuracy(labels: Sequence[int], predictions: Sequence[int]) -> float:
    """Fraction of examples whose prediction equals the label, in [0, 1]."""
    y, p = _ids(labels, predictions)
    return float(np.mean(y == p))


def _per_class(cm: np.ndarray) -> tuple[np.ndarray, ...]:
    """Precision, recall, F1 and support per class of a confusion matrix (0 where undefined)."""
    tp = np.diag(cm).astype(np.float64)
    predicted = cm.sum(axis=0)
    support = cm.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(support > 0, tp / support, 0.0)
        # 2TP / (2TP + FP + FN) is the harmonic mean of precision and recall whenever TP > 0,
        # and 0 (not 0/0) for a class with a TP of 0 seen on one side.
        denom = predicted + support
        f1 = np.where(denom > 0, 2 * tp / denom, 0.0)
    return precision, recall, f1, support


def binary_f1(labels: Sequence[int], predictions: Sequence[int], positive: int = POSITIVE) -> float:
    """F1 of the class `positive` (label id 1 by default, as in GLUE MRPC/QQP), in [0, 1].

    0 when there is no true positive, including when neither side holds the positive class.

        binary_f1([1, 1, 0, 0], [1, 0, 1, 0])   # 0.5 (P = 1/2, R = 1/2)
    """
    y, p = _ids(labels, predictions)
    tp = int(np.sum((y == positive) & (p == positive)))
    denom = int(np.sum(y == positive) + np.sum(p == positive))
    return 2 * tp / denom if denom else 0.0


def macro_f1(
    labels: Sequence[int], predictions: Sequence[int], num_classes: int | None = None
) -> float:
    """Unweighted mean of the per-class F1 over the classes seen in labels or predictions."""
    cm = confusion_matrix(labels, predictions, num_classes)
    return _macro(cm)


def _macro(cm: np.ndarray) -> float:
    _, _, f1, _ = _per_class(cm)
    seen = (cm.sum(axis=0) + cm.sum(axis=1)) > 0
    return float(f1[seen].mean())


def matthews_corrcoef(
    labels: Sequence[int], predictions: Sequence[int], num_classes: int | None = None
) -> float:
    """Matthews correlation, binary or multi-class (Gorodkin's R_K), in [-1, 1]; 0 if undefined.

    With the confusion matrix C over n examples, c = trace(C), t_k = row sums (true counts),
    p_k = column sums (predicted counts):
        R_K = (c n - sum_k p_k t_k) / sqrt((n^2 - sum_k p_k^2) (n^2 - sum_k t_k^2))
    which for two classes is (TP TN - FP FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)).

        matthews_corrcoef([1, 1, 0, 0], [1, 0, 0, 0])   # 0.577 (= 1/sqrt(3))
    """
    return _mcc(confusion_matrix(labels, predictions, num_classes))


def _mcc(cm: np.ndarray) -> float:
    cm = cm.astype(np.float64)  # n^2 overflows nothing in float64 for any real data set
    n = cm.sum()
    t = cm.sum(axis=1)
    p = cm.sum(axis=0)
    numerator = np.trace(cm) * n - p @ t
    denominator = np.sqrt((n * n - p @ p) * (n * n - t @ t))
    # A side with a single class makes its factor 0: no correlation can be measured.
    return float(numerator / denominator) if denominator > 0 else 0.0


# ---------------------------------------------------------------------------- regression
def pearson(targets: Sequence[float], predictions: Sequence[float]) -> float:
    """Pearson correlation in [-1, 1]; 0 when either side is constant (scipy: NaN)."""
    return _pearson(*_values(targets, predictions))


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    dx = x - x.mean()
    dy = y - y.mean()
    denom = np.sqrt((dx @ dx) * (dy @ dy))
    if denom == 0:
        return 0.0
    # Rounding can push a perfect correlation a hair past 1.
    return float(np.clip((dx @ dy) / denom, -1.0, 1.0))


def average_ranks(values: Sequence[float]) -> np.ndarray:
    """1-based ranks; tied values share the mean of the ranks they span ([5, 7, 7] -> 1, 2.5, 2.5)."""
    x = np.asarray(values, dtype=np.float64)
    order = np.argsort(x, kind="stable")
    ordered = x[order]
    starts_group = np.r_[True, ordered[1:] != ordered[:-1]]
    group = np.cumsum(starts_group) - 1
    starts = np.flatnonzero(starts_group)
    ends = np.r_[starts[1:], len(x)]  # exclusive
    # A group spanning 0-based positions [s, e) holds ranks s+1 .. e: their mean is (s+e+1)/2.
    mean_rank = (starts + ends + 1) / 2.0
    ranks = np.empty(len(x))
    ranks[order] = mean_rank[group]
    return ranks


def spearman(targets: Sequence[float], predictions: Sequence[float]) -> float:
    """Spearman rank correlation: Pearson of the average ranks; 0 when a side is constant."""
    x, y = _values(targets, predictions)
    return _pearson(average_ranks(x), average_ranks(y))


# -------------------------------------------------------------------------------- reports
def _pct(value: float) -> float:
    return float(100.0 * value)


def glue_metrics(task: str, labels, predictions) -> dict[str, float]:
    """The official metrics of GLUE task `task`, in percent (see GLUE_METRICS for the keys).

    Class tasks take integer label ids (MRPC/QQP: 1 = paraphrase/duplicate); STS-B takes the
    float similarity scores. MNLI is scored once per dev set (matched, mismatched).

        glue_metrics("cola", [1, 1, 0, 0], [1, 0, 0, 0])   # {"mcc": 57.73...}
        glue_metrics("stsb", [0.0, 2.5, 5.0], [0.4, 2.0, 4.1])
    """
    name = task.lower()
    if name not in GLUE_METRICS:
        raise UserError(f"unknown GLUE task {task!r}", hint=f"use one of {', '.join(GLUE_METRICS)}")
    if name == "stsb":
        x, y = _values(labels, predictions)
        r, rho = _pearson(x, y), _pearson(average_ranks(x), average_ranks(y))
        return {"pearson": _pct(r), "spearman": _pct(rho), "combined": _pct((r + rho) / 2)}
    if name == "cola":
        return {"mcc": _pct(matthews_corrcoef(labels, predictions))}
    acc = accuracy(labels, predictions)
    if name in ("mrpc", "qqp"):
        y, p = _ids(labels, predictions)
        if y.max() > 1 or p.max() > 1:
            raise ValueError(f"{name} is a binary task: class ids must be 0 or 1")
        f1 = binary_f1(y, p)
        return {"accuracy": _pct(acc), "f1": _pct(f1), "combined": _pct((acc + f1) / 2)}
    return {"accuracy": _pct(acc)}


def classification_report(
    labels: Sequence[int], predictions: Sequence[int], label_names: Sequence[str]
) -> dict:
    """Accuracy, macro-F1, per-class scores and the confusion matrix of any labelled file.

    Ids index `label_names` (the run's label set); every name gets a per-class entry, in that
    order, also a class absent from the file (support 0, excluded from macro-F1). Scores in %.

        classification_report([0, 1, 1], [0, 1, 0], ["neg", "pos"])
        # {"accuracy": 66.67, "macro_f1": 66.67,
        #  "per_class": {"neg": {"precision": 50.0, "recall": 100.0, "f1": 66.67, "support": 1},
        #                "pos": {"precision": 100.0, "recall": 50.0, "f1": 66.67, "support": 2}},
        #  "confusion_matrix": {"labels": ["neg", "pos"], "rows": [[1, 0], [1, 1]]}}
    """
    names = [str(name) for name in label_names]
    if len(set(names)) != len(names):
        raise ValueError(f"label names repeat: {names}")
    cm = confusion_matrix(labels, predictions, num_classes=len(names))
    precision, recall, f1, support = _per_class(cm)
    per_class = {
        name: {
            "precision": _pct(precision[i]),
            "recall": _pct(recall[i]),
            "f1": _pct(f1[i]),
            "support": int(support[i]),
        }
        for i, name in enumerate(names)
    }
    return {
        "accuracy": _pct(np.trace(cm) / cm.sum()),
        "macro_f1": _pct(_macro(cm)),
        "per_class": per_class,
        "confusion_matrix": {"labels": names, "rows": cm.tolist()},
    }


def regression_report(targets: Sequence[float], predictions: Sequence[float]) -> dict[str, float]:
    """Pearson and Spearman (in %, x100 as GLUE's STS-B) and the mean squared error (unscaled).

    regression_report([1.0, 2.0, 3.0], [1.0, 2.0, 4.0])
    # {"pearson": 98.198..., "spearman": 100.0, "mse": 0.333...}
    """
    x, y = _values(targets, predictions)
    return {
        "pearson": _pct(_pearson(x, y)),
        "spearman": _pct(_pearson(average_ranks(x), average_ranks(y))),
        "mse": float(np.mean((x - y) ** 2)),
    }
