"""Parity bounds that hold for any model the training can produce, not for one machine's numbers.

A tiny model trained inside the suite is not bit-identical across CPUs and thread counts,
so nothing here depends on how well it trained. What each precision guarantees:

- float32: the same arithmetic in another runtime. Probabilities within ``max_diff``.
- float16 / int8: a bounded perturbation of the probabilities. A label may flip only for
  an image whose Keras probability lies within ``band`` of the decision threshold (0.5 for
  two classes); those *borderline* images are reported, and flips among them may be at
  most ``max_borderline_flips`` of all images. The mean perturbation is bounded too.
- int8 on a *trained* model (``trained=True``): accuracy within ``accuracy_points`` of Keras.

Worst values over 20 runs (``studies/parity_seeds.sh``: 5 seeds x 1 and 2 intra-op threads,
run twice, the second time with the calibration temperature in the graph), tiny models on
synthetic files / a 300-image real sample: float32 max 2.1e-5; float16 max 1.7e-2, mean
1.8e-3, at most 3 flips in 300 (1 %), the farthest 0.012 from 0.5; int8 max 0.42, mean
0.053, at most 23 flips in 300 (7.7 %), the farthest 0.34 from 0.5, accuracy within 3 points.
The tiny real-sample model is weak (many probabilities near 0.5), so int8 is held loosely
here; the README gives the real model's far tighter figures. ``pytest -s`` prints each run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np


@dataclass(frozen=True)
class Bounds:
    max_diff: float  # max |p_tflite - p_keras| over images and classes
    mean_diff: float  # mean of the same
    band: float  # label flips allowed only where |p_keras - threshold| <= band
    max_borderline_flips: float  # fraction of all images that may flip inside the band
    accuracy_points: Optional[float] = None  # |accuracy - Keras accuracy| on a trained model


BOUNDS = {
    "float32": Bounds(max_diff=1e-4, mean_diff=1e-5, band=1e-4, max_borderline_flips=0.0),
    "float16": Bounds(max_diff=5e-2, mean_diff=1e-2, band=5e-2, max_borderline_flips=0.02),
    "int8": Bounds(max_diff=0.7, mean_diff=0.1, band=0.45, max_borderline_flips=0.15, accuracy_points=0.06),
}
# Dynamic range: the same int8 weights; activations quantized per image from their own range
# (never clipped, usually narrower than int8's calibrated one), so int8's bounds hold for it too.
BOUNDS["dynamic"] = BOUNDS["int8"]


@dataclass
class Parity:
    precision: str
    max_diff: float
    mean_diff: float
    agreement: float
    flips: int
    farthest_flip: float  # largest |p_keras - threshold| among flipped images (0 if none)
    borderline: int  # images within the band
    accuracy_change: float

    def line(self) -> str:
        return (f"parity {self.precision}: max |dp| {self.max_diff:.2e}, mean {self.mean_diff:.2e}, "
                f"labels {self.agreement:.4f} ({self.flips} flips, farthest {self.farthest_flip:.3f} from threshold; "
                f"{self.borderline} borderline), accuracy change {self.accuracy_change:+.4f}")


def measure(precision: str, keras_p: np.ndarray, tflite_p: np.ndarray, labels: np.ndarray) -> Parity:
    """Compare two (N, 2) probability arrays; flips are arg-max changes."""
    bounds = BOUNDS[precision]
    diff = np.abs(tflite_p - keras_p)
    keras_labels, tflite_labels = keras_p.argmax(axis=1), tflite_p.argmax(axis=1)
    flipped = tflite_labels != keras_labels
    distance = np.abs(keras_p.max(axis=1) - 0.5)  # two classes: distance of p(either) from 0.5
    return Parity(
        precision=precision,
        max_diff=float(diff.max()),
        mean_diff=float(diff.mean()),
        agreement=float(1 - flipped.mean()),
        flips=int(flipped.sum()),
        farthest_flip=float(distance[flipped].max()) if flipped.any() else 0.0,
        borderline=int((distance <= bounds.band).sum()),
        accuracy_change=float((tflite_labels == labels).mean() - (keras_labels == labels).mean()),
    )


def check(found: Parity, n: int, trained: bool) -> None:
    """Assert the bounds of ``found.precision``; the message carries every measured figure."""
    bounds = BOUNDS[found.precision]
    assert np.isfinite(found.max_diff), found
    assert found.max_diff <= bounds.max_diff, found
    assert found.mean_diff <= bounds.mean_diff, found
    assert found.farthest_flip <= bounds.band, found
    assert found.flips <= bounds.max_borderline_flips * n, found
    if trained and bounds.accuracy_points is not None:
        assert abs(found.accuracy_change) <= bounds.accuracy_points, found
