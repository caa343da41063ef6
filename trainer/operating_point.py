"""The decision threshold that travels with a model: chosen on the validation split, written
into the run, then into the .tflite metadata, so ``infer`` decides as the run was tuned."""

from __future__ import annotations

import numpy as np

from artery_edge.trainer.config import parse_operating_point


def choose_threshold(labels: np.ndarray, positive_scores: np.ndarray, rule: str) -> float:
    """The threshold on p(positive) that ``rule`` picks on these (validation) labels:

    - ``argmax``: 0.5 (two classes);
    - ``youden``: maximises sensitivity + specificity - 1;
    - ``accuracy``: maximises accuracy at the data's own prevalence;
    - ``sensitivity=X``: the highest threshold whose sensitivity reaches X;
    - ``specificity=X``: the lowest threshold whose specificity reaches X.

    Ties go to the threshold nearest 0.5; youden and accuracy then take the middle of the gap to
    the next lower score (the same decisions on these labels). Positive iff p >= threshold.
    """
    from sklearn.metrics import roc_curve  # the train extra: this module imports without it

    name, target = parse_operating_point(rule)
    truth = np.asarray(labels).astype(bool)
    if name == "argmax" or truth.all() or not truth.any():
        return 0.5
    # every distinct score is a candidate: dropping collinear points would move sensitivity=X
    fpr, tpr, thresholds = roc_curve(truth, np.asarray(positive_scores, dtype=np.float64), drop_intermediate=False)
    fpr, tpr, thresholds = fpr[1:], tpr[1:], thresholds[1:]  # drop the (inf) point that calls nothing positive
    if name == "youden":
        score = tpr - fpr
    elif name == "accuracy":
        prevalence = truth.mean()
        score = prevalence * tpr + (1 - prevalence) * (1 - fpr)
    elif name == "sensitivity":
        reached = np.flatnonzero(tpr >= target - 1e-12)
        return float(thresholds[reached[0]])  # thresholds fall as tpr rises: the first is the highest
    else:
        reached = np.flatnonzero(1 - fpr >= target - 1e-12)
        return float(thresholds[reached[-1]]) if len(reached) else float(thresholds[0])
    best = np.flatnonzero(score >= score.max() - 1e-12)
    i = best[np.argmin(np.abs(thresholds[best] - 0.5))]
    # every threshold down to the next lower score (the next ROC point: every distinct score is one)
    # decides the same: take the middle of that gap. At a validation image's own score the boundary
    # touches it, and on a small, separable split (a new site's 20 images) that score can be
    # p = 0.99999, finer than an INT8 output resolves.
    return float((thresholds[i] + thresholds[i + 1]) / 2) if i + 1 < len(thresholds) else float(thresholds[i])
