"""Binary classification metrics for train and evaluate: counts and ratios here, ROC AUC and
the confusion matrix from scikit-learn. A ratio whose denominator is empty is None, not 0.

scikit-learn (the train extra) is imported where it is used: ``trainer.runs`` reaches this
module through ``trainer.training`` and must load in the TensorFlow-free edge environment."""

from __future__ import annotations

from typing import Optional

import numpy as np


def roc_auc(y_true: np.ndarray, scores: np.ndarray) -> Optional[float]:
    """Area under the ROC curve (ties count half); None when only one class is present."""
    from sklearn.metrics import roc_auc_score

    y_true = np.asarray(y_true).astype(bool)
    if y_true.all() or not y_true.any():
        return None
    return float(roc_auc_score(y_true, scores))


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Rows are true classes, columns predicted classes; every class has its row and column."""
    from sklearn.metrics import confusion_matrix as sklearn_confusion_matrix

    return sklearn_confusion_matrix(y_true, y_pred, labels=np.arange(n_classes))


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
