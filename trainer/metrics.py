"""Binary classification metrics in NumPy (no scikit-learn): one definition for train and evaluate."""

from __future__ import annotations

from typing import Optional

import numpy as np


def roc_auc(y_true: np.ndarray, scores: np.ndarray) -> Optional[float]:
    """Area under the ROC curve via the rank-sum statistic (ties count half); None if one class."""
    y_true = np.asarray(y_true).astype(bool)
    n_pos, n_neg = int(y_true.sum()), int((~y_true).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = np.asarray(scores)[order]
    ranks = np.empty(len(scores), dtype=np.float64)
    # average ranks for ties
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    average = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(average, counts)
    return float((ranks[y_true].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def roc_curve(y_true: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """False-positive rates, true-positive rates and thresholds, from the highest score down."""
    y_true = np.asarray(y_true).astype(bool)
    thresholds = np.unique(scores)[::-1]
    tpr = np.array([(scores[y_true] >= t).mean() for t in thresholds]) if y_true.any() else np.zeros(len(thresholds))
    fpr = np.array([(scores[~y_true] >= t).mean() for t in thresholds]) if (~y_true).any() else np.zeros(len(thresholds))
    return np.r_[0.0, fpr], np.r_[0.0, tpr], np.r_[np.inf, thresholds]


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Rows are true classes, columns predicted classes."""
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return matrix


def _ratio(numerator: float, denominator: float) -> Optional[float]:
    return float(numerator / denominator) if denominator else None


def binary_metrics(y_true: np.ndarray, positive_scores: np.ndarray, y_pred: np.ndarray, positive: int = 1) -> dict:
    """Accuracy, balanced accuracy, sensitivity, specificity, PPV, NPV, F1 and ROC AUC.

    ``positive`` is the index of the class whose recall is the sensitivity (Unhealthy).
    """
    truth = np.asarray(y_true) == positive
    predicted = np.asarray(y_pred) == positive
    tp = float(np.sum(truth & predicted))
    tn = float(np.sum(~truth & ~predicted))
    fp = float(np.sum(~truth & predicted))
    fn = float(np.sum(truth & ~predicted))
    sensitivity = _ratio(tp, tp + fn)
    specificity = _ratio(tn, tn + fp)
    ppv = _ratio(tp, tp + fp)
    f1 = _ratio(2 * tp, 2 * tp + fp + fn)
    return {
        "accuracy": _ratio(tp + tn, len(truth)),
        "balanced_accuracy": None if sensitivity is None or specificity is None else (sensitivity + specificity) / 2,
        "sensitivity": sensitivity,
        "specificity": specificity,
        "ppv": ppv,
        "npv": _ratio(tn, tn + fn),
        "f1": f1,
        "roc_auc": roc_auc(truth, np.asarray(positive_scores)),
    }
