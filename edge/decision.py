"""The decision rule, defined once: training, prediction, evaluation and the device all call it.

The positive class (the one whose recall is the sensitivity) wins iff its probability reaches
the threshold; otherwise the likeliest of the other classes wins, so the rule stays right for
more than two classes. Without a threshold it is the plain arg-max. NumPy only: it runs on the
device. Thresholds are chosen on validation data by ``trainer.operating_point.choose_threshold``.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

POSITIVE_LABEL = "Unhealthy"


def positive_index(class_names: Sequence[str], positive_label: Optional[str] = None) -> int:
    """Index of the positive class: ``positive_label`` when it is one of the classes (a model's
    metadata names it), else Unhealthy when present, else the last class."""
    names = list(class_names)
    for label in (positive_label, POSITIVE_LABEL):
        if label is not None and label in names:
            return names.index(label)
    return len(names) - 1


def decide(probabilities: np.ndarray, threshold: Optional[float], positive: int) -> np.ndarray:
    """Class indices for probabilities of shape (n_classes,) or (N, n_classes).

    Args:
        probabilities: class probabilities, classes on the last axis.
        threshold: the positive class wins iff its probability >= this; None: arg-max.
        positive: index of the positive class (``positive_index``).
    """
    probabilities = np.asarray(probabilities)
    if threshold is None:
        return probabilities.argmax(axis=-1)
    others = np.where(np.arange(probabilities.shape[-1]) == positive, -np.inf, probabilities)
    return np.where(probabilities[..., positive] >= threshold, positive, others.argmax(axis=-1))
