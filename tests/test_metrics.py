"""trainer.metrics against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sklearn", reason="scikit-learn not installed (train extra)")

from artery_edge.trainer.metrics import binary_metrics, confusion_matrix, roc_auc  # noqa: E402


def test_binary_metrics_by_hand():
    y = np.array([1, 1, 1, 0, 0, 0, 0, 1])
    pred = np.array([1, 1, 0, 0, 0, 1, 0, 1])
    scores = np.array([0.9, 0.8, 0.4, 0.1, 0.2, 0.7, 0.3, 0.6])
    m = binary_metrics(y, scores, pred, positive=1)
    assert m["sensitivity"] == 0.75 and m["specificity"] == 0.75
    assert m["ppv"] == 0.75 and m["npv"] == 0.75 and m["accuracy"] == 0.75 and m["f1"] == 0.75
    assert m["roc_auc"] == pytest.approx(14 / 16)  # 0.4 and 0.6 rank below the negative 0.7
    assert confusion_matrix(y, pred, 2).tolist() == [[3, 1], [1, 3]]


def test_auc_ties_count_half_and_single_class_is_none():
    assert roc_auc(np.array([0, 1]), np.array([0.5, 0.5])) == 0.5
    assert roc_auc(np.array([1, 1]), np.array([0.2, 0.9])) is None
    assert binary_metrics(np.array([0, 0]), np.array([0.1, 0.2]), np.array([0, 0]))["sensitivity"] is None

