"""Calibrated probabilities: temperature scaling (Guo et al., 2017) and the expected calibration error.

One scalar T is fitted on the validation split after training, by minimising the negative
log-likelihood of softmax(logits / T); it changes no decision at the arg-max, only how
confident the probabilities are. ``convert`` bakes it into the serving graph, so every
TFLite variant outputs calibrated probabilities, and the metadata records it.
"""

from __future__ import annotations

import numpy as np

ECE_BINS = 15


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64) / temperature
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def negative_log_likelihood(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    z = np.asarray(logits, dtype=np.float64) / temperature
    z -= z.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-log_p[np.arange(len(labels)), labels].mean())


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The T in [0.05, 20] that minimises the validation NLL (convex in 1/T; bounded Brent search).
    When the arg-max is right on every image the NLL falls all the way to T -> 0 and has no
    minimum: nothing says how confident to be, so T stays 1 (a new site's 20 validation images
    are often separable: the search then stopped at 0.05 and pushed p to 0.9999991)."""
    from scipy.optimize import minimize_scalar

    labels = np.asarray(labels, dtype=int)
    if len(labels) and np.array_equal(np.asarray(logits).argmax(axis=1), labels):
        return 1.0
    found = minimize_scalar(lambda log_t: negative_log_likelihood(logits, labels, float(np.exp(log_t))),
                            bounds=(np.log(0.05), np.log(20.0)), method="bounded")
    return float(np.exp(found.x))


def reliability(probabilities: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> dict:
    """Top-label reliability: per equal-width confidence bin, its count, mean confidence and accuracy
    (scikit-learn's ``calibration_curve`` on "arg-max is right" against the top probability)."""
    from sklearn.calibration import calibration_curve

    confidence = np.minimum(probabilities.max(axis=1), 1.0)  # a float softmax may round to 1 + 1e-7
    correct = (probabilities.argmax(axis=1) == np.asarray(labels)).astype(int)
    edges = np.linspace(0.0, 1.0, bins + 1)
    count = np.bincount(np.searchsorted(edges[1:-1], confidence), minlength=bins)  # calibration_curve's bins
    accuracy, mean_confidence = np.zeros(bins), np.zeros(bins)
    if len(confidence):  # calibration_curve reports the non-empty bins only
        accuracy[count > 0], mean_confidence[count > 0] = calibration_curve(correct, confidence, n_bins=bins)
    return {"edges": edges.tolist(), "count": count.tolist(),
            "confidence": mean_confidence.tolist(), "accuracy": accuracy.tolist()}


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    """Sum over bins of (share of images) x |accuracy - mean confidence|, top label, 15 bins."""
    table = reliability(probabilities, labels, bins)
    count = np.asarray(table["count"], dtype=float)
    gap = np.abs(np.asarray(table["accuracy"]) - np.asarray(table["confidence"]))
    return float((count / max(count.sum(), 1) * gap).sum())
