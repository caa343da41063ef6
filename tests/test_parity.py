"""The accuracy-parity suite: each TFLite variant against Keras, end to end from the same files.

Keras runs through the trainer's tf.data pipeline, TFLite through edge.Classifier.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from artery_edge.edge.precisions import PRECISIONS

pytest.importorskip("tensorflow", reason="TensorFlow not installed (train extra)")

from artery_edge.edge import Classifier  # noqa: E402
from artery_edge.edge.provenance import RunIdentity  # noqa: E402
from artery_edge.evaluation.evaluate import keras_probabilities, load_classifier, load_keras, tflite_probabilities  # noqa: E402
from tests import parity  # noqa: E402
from tests.conftest import REAL_DATA, TEST_SEED, WEIGHTS_035, needs_imagenet, needs_real_data  # noqa: E402
from artery_edge.trainer.pipeline import make_dataset  # noqa: E402
from artery_edge.trainer.samples import Sample  # noqa: E402
from artery_edge.trainer.scan import scan_dataset  # noqa: E402

pytestmark = pytest.mark.parity


def check_parity(run, models: dict[str, Path], samples: list[Sample]) -> dict[str, parity.Parity]:
    """Same files through Keras and each TFLite variant; bounds from ``tests/parity.py``."""
    labels = np.array([s.label for s in samples])
    keras_p = keras_probabilities(load_keras(run), run.image_size, samples)
    found = {}
    identity = RunIdentity.of(run)
    for precision, path in models.items():
        tflite_p = tflite_probabilities(load_classifier(path, identity), samples)
        found[precision] = parity.measure(precision, keras_p, tflite_p, labels)
        print(found[precision].line())
    for result in found.values():
        parity.check(result, len(samples), trained=True)
    return found


@needs_imagenet
def test_parity_on_synthetic_files(imagenet_converted_run, synthetic_dir):
    run, models = imagenet_converted_run
    from artery_edge.trainer.runs import load_run

    samples = scan_dataset(synthetic_dir).samples  # all 160 files, not only the 24 test ones
    check_parity(load_run(run.run_dir), models, samples)


def test_resize_parity_trainer_vs_edge(converted_run, tmp_path):
    """Upscaled small patches and downscaled large images give identical pixels in both pipelines."""
    from PIL import Image

    run, models = converted_run
    rng = np.random.default_rng(5)
    samples = []
    for i, side in enumerate((20, 33, 48, 161, 400)):
        path = tmp_path / f"img{i}.png"
        Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(path)
        samples.append(Sample(path, 0))
    trainer_pixels = np.concatenate([x.numpy() for x, _ in make_dataset(samples, 48, 8)])
    classifier = Classifier(models["float32"])
    edge_pixels = np.stack([classifier.preprocess(s.path) for s in samples]).astype(np.float32)
    assert np.array_equal(trainer_pixels, edge_pixels)


@needs_real_data
def test_parity_on_a_sample_of_the_real_data(tmp_path_factory):
    from artery_edge.converters.options import ConvertOptions
    from artery_edge.converters.tflite import convert
    from artery_edge.trainer.config import TrainConfig
    from artery_edge.trainer.runs import load_run
    from artery_edge.trainer.training import train

    data = tmp_path_factory.mktemp("real") / "data"
    for name in ("Healthy", "Unhealthy"):
        (data / name).mkdir(parents=True)
        for path in sorted((REAL_DATA / name).glob("*.png"))[:150]:
            (data / name / path.name).symlink_to(path)
    out = tmp_path_factory.mktemp("real_runs")
    # ../shared's weights beside its data: the parity bounds are a pretrained model's
    config = TrainConfig(data_dirs=[str(data)], output_dir=str(out), image_size=64, alpha=0.35, weights=str(WEIGHTS_035),
                         batch_size=16, epochs=6, learning_rate=3e-3, seed=TEST_SEED, fine_tune_epochs=1, fine_tune_learning_rate=1e-4,
                         tensorboard=False, sample_grid_size=4)
    result = train(config, log=lambda message: None, verbose=0)
    models = {r.precision: Path(r.path)
              for r in convert(result.run_dir, ConvertOptions(list(PRECISIONS), calibration_images=60))}
    check_parity(load_run(result.run_dir), models, scan_dataset(data).samples)
