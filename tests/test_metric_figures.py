"""The figures do not move: scikit-learn and SciPy behind trainer.metrics, the reliability bins,
the bootstrap intervals and the sensitivity threshold give what the NumPy originals gave.

The originals (as of e7e3511) are frozen below and compared with the new code on fixed inputs,
ties included."""

from __future__ import annotations

from typing import Optional

import numpy as np
import pytest

pytest.importorskip("sklearn", reason="scikit-learn not installed (train extra)")
pytest.importorskip("scipy", reason="SciPy not installed (train extra)")

from artery_edge.evaluation.evaluate import bootstrap_intervals, sensitivity_threshold  # noqa: E402
from artery_edge.trainer.calibration import expected_calibration_error, reliability  # noqa: E402
from artery_edge.trainer.metrics import binary_metrics, confusion_matrix, roc_auc  # noqa: E402
from artery_edge.trainer.operating_point import choose_threshold  # noqa: E402


# ---- frozen originals (trainer/metrics.py, trainer/calibration.py, evaluation/evaluate.py at e7e3511) ----

def old_roc_auc(y_true, scores) -> Optional[float]:
    y_true = np.asarray(y_true).astype(bool)
    n_pos, n_neg = int(y_true.sum()), int((~y_true).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = np.asarray(scores)[order]
    ranks = np.empty(len(scores), dtype=np.float64)
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    ranks[order] = np.repeat(first + (counts + 1) / 2.0, counts)
    return float((ranks[y_true].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def old_roc_curve(y_true, scores):
    y_true = np.asarray(y_true).astype(bool)
    thresholds = np.unique(scores)[::-1]
    tpr = np.array([(scores[y_true] >= t).mean() for t in thresholds]) if y_true.any() else np.zeros(len(thresholds))
    fpr = np.array([(scores[~y_true] >= t).mean() for t in thresholds]) if (~y_true).any() else np.zeros(len(thresholds))
    return np.r_[0.0, fpr], np.r_[0.0, tpr], np.r_[np.inf, thresholds]


def old_confusion_matrix(y_true, y_pred, n_classes):
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return matrix


def old_reliability(probabilities, labels, bins=15) -> dict:
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == np.asarray(labels)
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    count = np.bincount(index, minlength=bins)
    with np.errstate(invalid="ignore"):
        mean_confidence = np.bincount(index, confidence, minlength=bins) / count
        accuracy = np.bincount(index, correct.astype(float), minlength=bins) / count
    return {"edges": edges.tolist(), "count": count.tolist(),
            "confidence": np.nan_to_num(mean_confidence).tolist(), "accuracy": np.nan_to_num(accuracy).tolist()}


def old_bootstrap_intervals(labels, scores, predicted, positive, rounds=1000, seed=0):
    rng = np.random.default_rng(seed)
    samples: dict = {}
    for _ in range(rounds):
        idx = rng.integers(0, len(labels), len(labels))
        for key, value in binary_metrics(labels[idx], scores[idx], predicted[idx], positive).items():
            if value is not None:
                samples.setdefault(key, []).append(value)
    return {key: [float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))] for key, v in samples.items()}


def old_threshold_for_sensitivity(labels, positive_scores, positive, target):
    scores = np.sort(positive_scores[labels == positive])[::-1]
    needed = int(np.ceil(target * len(scores)))
    return float(scores[max(needed, 1) - 1])


# ---- fixed inputs: scores rounded to two decimals (many ties), a tiny set and a skewed one ----

def cases():
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 2, 60)
    found = [(labels, np.round(np.clip(0.3 * labels + rng.random(60) * 0.7, 0, 1), 2))]
    found.append((np.array([0, 1, 0, 1, 1]), np.array([0.5, 0.5, 0.2, 0.9, 0.2])))
    skewed = (rng.random(41) < 0.15).astype(int)
    found.append((skewed, np.round(rng.random(41), 1)))
    return found


@pytest.mark.parametrize("labels, scores", cases())
def test_roc_auc_and_confusion_matrix_match_the_originals(labels, scores):
    assert roc_auc(labels, scores) == pytest.approx(old_roc_auc(labels, scores), abs=1e-12)
    predicted = (scores >= 0.5).astype(int)
    assert np.array_equal(confusion_matrix(labels, predicted, 3), old_confusion_matrix(labels, predicted, 3))
    assert roc_auc(np.ones(4), np.arange(4.0)) is old_roc_auc(np.ones(4), np.arange(4.0)) is None


@pytest.mark.parametrize("labels, scores", cases())
def test_sklearn_roc_points_are_the_originals(labels, scores):
    from sklearn.metrics import roc_curve

    new, old = roc_curve(labels.astype(bool), scores, drop_intermediate=False), old_roc_curve(labels, scores)
    for a, b in zip(new, old):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("labels, scores", cases())
def test_every_operating_point_rule_picks_the_original_threshold(labels, scores):
    """choose_threshold itself is unchanged but for its ROC points: run it on the frozen points."""
    import artery_edge.trainer.operating_point as op

    for rule in ("youden", "accuracy", "sensitivity=0.9", "sensitivity=0.7", "specificity=0.8", "argmax"):
        new = choose_threshold(labels, scores, rule)
        with pytest.MonkeyPatch.context() as patch:
            import sklearn.metrics

            patch.setattr(sklearn.metrics, "roc_curve", lambda y, s, drop_intermediate: old_roc_curve(y, s))
            assert new == op.choose_threshold(labels, scores, rule), rule


@pytest.mark.parametrize("labels, scores", cases())
def test_the_sensitivity_threshold_is_the_original_one(labels, scores):
    for target in (0.5, 0.75, 0.9, 0.95, 1.0):
        assert sensitivity_threshold(labels, scores, 1, target) == old_threshold_for_sensitivity(labels, scores, 1, target)


def test_the_sensitivity_threshold_where_the_original_rounded_up():
    """0.56 * 25 is 14.000000000000002 in floating point: the original asked for 15 of 25 positives
    (sensitivity 0.6); choose_threshold, shared with training, stops at 14 (0.56, the target)."""
    labels, scores = np.r_[np.ones(25, int), 0], np.r_[1 - 0.04 * np.arange(25), 0.0]
    assert old_threshold_for_sensitivity(labels, scores, 1, 0.56) == scores[14]
    assert sensitivity_threshold(labels, scores, 1, 0.56) == scores[13]


def probability_cases():
    rng = np.random.default_rng(3)
    two = rng.random((300, 2))
    three = rng.dirichlet([1, 1, 1], 300)
    on_edges = np.round(two / two.sum(axis=1, keepdims=True) * 15) / 15  # confidences on the bin edges
    return [two / two.sum(axis=1, keepdims=True), three, on_edges, np.array([[0.5, 0.5]] * 8), np.array([[0.0, 1.0]] * 5)]


@pytest.mark.parametrize("probabilities", probability_cases())
def test_reliability_bins_and_ece_match_the_originals(probabilities):
    labels = np.random.default_rng(1).integers(0, probabilities.shape[1], len(probabilities))
    for truth in (labels, probabilities.argmax(axis=1)):  # mixed, and every arg-max right
        assert reliability(probabilities, truth) == old_reliability(probabilities, truth)
        table = old_reliability(probabilities, truth)
        count, gap = np.asarray(table["count"], float), np.abs(np.subtract(table["accuracy"], table["confidence"]))
        assert expected_calibration_error(probabilities, truth) == float((count / count.sum() * gap).sum())


@pytest.mark.parametrize("labels, scores", cases())
def test_bootstrap_intervals_match_the_originals(labels, scores):
    predicted = (scores >= 0.5).astype(int)
    for rounds, seed in ((200, 0), (37, 5)):
        assert bootstrap_intervals(labels, scores, predicted, 1, rounds, seed) == \
            old_bootstrap_intervals(labels, scores, predicted, 1, rounds, seed)
