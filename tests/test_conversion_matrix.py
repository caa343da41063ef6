"""`convert --quantize all` on models it has not seen: random-init and ImageNet bases, two
widths, three input sizes. Every variant must convert, load in ``edge.Classifier`` and stay
within the parity bounds of ``tests/parity.py`` (the untrained heads make no accuracy claim).

The default suite runs a covering set: with the session's tiny run (ImageNet, alpha 0.35,
48 px, converted to every precision in ``tests/conftest.py`` and held to the same bounds in
``tests/test_parity.py``) every base, width and size is converted at least once, in 2 cases
here; ``ARTERY_EDGE_MATRIX=full`` runs all 12 combinations (about 20 min on 2 cores).
"""

from __future__ import annotations

from pathlib import Path

import itertools
import os

import numpy as np
import pytest

from artery_edge.edge.precisions import PRECISIONS

pytest.importorskip("tensorflow", reason="TensorFlow not installed (train extra)")

from artery_edge.edge import Classifier, read_metadata  # noqa: E402
from artery_edge.evaluation.evaluate import keras_probabilities, tflite_probabilities  # noqa: E402
from tests import parity  # noqa: E402
from tests.conftest import SHARED  # noqa: E402
from artery_edge.trainer.pipeline import load_arrays  # noqa: E402
from artery_edge.trainer.scan import scan_dataset  # noqa: E402

pytestmark = pytest.mark.parity

CLASS_NAMES = ["Healthy", "Unhealthy"]


def imagenet_file(alpha: float) -> Path:
    return SHARED / "weights" / f"mobilenet_v2_{alpha}_224_no_top.h5"


FULL = list(itertools.product(["none", "imagenet"], [0.35, 1.0], [32, 48, 96]))
COVERING = [("none", 1.0, 32), ("imagenet", 0.35, 96)]  # + the session's run: imagenet, 0.35, 48 px
CASES = FULL if os.environ.get("ARTERY_EDGE_MATRIX") == "full" else COVERING


@pytest.mark.parametrize(("weights", "alpha", "size"), CASES)
def test_every_precision_converts_and_keeps_parity(weights, alpha, size, synthetic_dir, tmp_path):
    import keras

    from artery_edge.converters.options import ConvertOptions
    from artery_edge.converters.tflite import convert, load_keras_model
    from artery_edge.trainer.config import TrainConfig
    from artery_edge.trainer.model import build_model, compile_model

    if weights == "imagenet":
        if not imagenet_file(alpha).is_file():
            pytest.skip(f"ImageNet weights not found at {imagenet_file(alpha)} (../shared is absent)")
        weights = str(imagenet_file(alpha))
    keras.utils.set_random_seed(size)
    config = TrainConfig(image_size=size, alpha=alpha, weights=weights, seed=size)
    model = build_model(2, config)
    samples = scan_dataset(synthetic_dir).samples[::4]
    if not config.pretrained:  # an untrained random MobileNetV2 outputs ~1e-11 features: fit it briefly
        compile_model(model, 1e-3)
        model.fit(*load_arrays(samples, size), batch_size=8, epochs=2, verbose=0)
    model.save(tmp_path / "model.keras")
    results = convert(tmp_path / "model.keras", ConvertOptions(list(PRECISIONS), labels=CLASS_NAMES,
                                                               calibration_data=synthetic_dir, calibration_images=16))
    assert [r.precision for r in results] == list(PRECISIONS)

    labels = np.array([s.label for s in samples])
    keras_p = keras_probabilities(load_keras_model(tmp_path / "model.keras"), size, samples)
    for result in results:
        classifier = Classifier(Path(result.path))
        assert classifier.labels == CLASS_NAMES and read_metadata(result.path).input_size == size
        found = parity.measure(result.precision, keras_p, tflite_probabilities(classifier, samples), labels)
        print(f"{Path(weights).name} alpha {alpha} {size} px: {found.line()}")
        parity.check(found, len(samples), trained=False)
