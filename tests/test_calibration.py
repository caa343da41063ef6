"""Temperature scaling and the expected calibration error, on probabilities with known calibration."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("scipy", reason="SciPy not installed (train extra)")

from artery_edge.trainer.calibration import expected_calibration_error, fit_temperature, reliability, softmax  # noqa: E402


def sample(logits: np.ndarray, temperature: float, seed: int = 0) -> np.ndarray:
    """Labels drawn from softmax(logits / temperature): that temperature is the calibrated one."""
    p = softmax(logits, temperature)
    return (np.random.default_rng(seed).random(len(p)) < p[:, 1]).astype(int)


def test_fit_temperature_recovers_the_true_one():
    logits = np.random.default_rng(1).normal(0, 4, (20000, 2))
    labels = sample(logits, 2.5)
    assert fit_temperature(logits, labels) == pytest.approx(2.5, rel=0.1)


def test_scaling_calibrates_without_changing_any_decision():
    logits = np.random.default_rng(2).normal(0, 4, (20000, 2))
    labels = sample(logits, 3.0)
    t = fit_temperature(logits, labels)
    before, after = expected_calibration_error(softmax(logits), labels), expected_calibration_error(softmax(logits, t), labels)
    assert before > 0.1 and after < 0.02  # overconfident at T = 1, calibrated at the fitted T
    assert np.array_equal(softmax(logits).argmax(axis=1), softmax(logits, t).argmax(axis=1))


def test_reliability_bins_cover_every_image():
    p = softmax(np.random.default_rng(3).normal(0, 2, (1000, 2)))
    table = reliability(p, np.zeros(1000, int), bins=15)
    assert sum(table["count"]) == 1000 and len(table["edges"]) == 16
    assert expected_calibration_error(np.array([[0.0, 1.0]] * 10), np.ones(10, int)) == 0.0
    assert expected_calibration_error(np.array([[0.0, 1.0]] * 10), np.zeros(10, int)) == 1.0


def test_a_separable_validation_split_keeps_temperature_one():
    """Every arg-max right: the NLL has no minimum (it falls as T -> 0), so no temperature is fitted;
    one wrong image gives the NLL a minimum again."""
    logits = np.random.default_rng(4).normal(0, 1, (20, 2))
    labels = logits.argmax(axis=1)
    assert fit_temperature(logits, labels) == 1.0
    labels[np.argmin(np.abs(logits[:, 1] - logits[:, 0]))] ^= 1  # the least certain image is now wrong
    assert 0.05 < fit_temperature(logits, labels) < 20.0
