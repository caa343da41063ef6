"""The recipe's new parts: site augmentation, the cosine schedule, label smoothing."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tensorflow", reason="TensorFlow not installed (train extra)")

import keras  # noqa: E402

from trainer.augment import SiteAugmentation  # noqa: E402
from trainer.config import TrainConfig  # noqa: E402
from trainer.model import SmoothedSparseCrossentropy, build_augmentation, learning_rate_schedule  # noqa: E402


def test_site_augmentation_changes_training_images_only():
    images = np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3)).astype("float32")
    layer = SiteAugmentation(rate=1.0, seed=1)
    np.testing.assert_array_equal(np.asarray(layer(images, training=False)), images)
    out = np.asarray(layer(images, training=True))
    assert out.shape == images.shape and out.min() >= 0 and out.max() <= 255
    assert np.abs(out - images).mean() > 5  # 32 px down-sampling, gamma, noise and blur all applied
    assert np.array_equal(np.asarray(SiteAugmentation(rate=0.0)(images, training=True)), images)


def test_site_augmentation_leaves_no_dark_frame():
    """The blur pads by reflection: a flat image keeps a flat border (zero padding darkened it)."""
    flat = np.full((32, 24, 24, 3), 128.0, "float32")
    out = np.asarray(SiteAugmentation(rate=1.0, seed=2)(flat, training=True))
    border = np.concatenate([out[:, 0], out[:, -1], out[:, :, 0], out[:, :, -1]], axis=1).mean()
    assert abs(border - out[:, 4:-4, 4:-4].mean()) < 2.0


def test_site_augmentation_round_trips_through_its_config():
    layer = SiteAugmentation(rate=0.3, seed=5, name="site")
    again = SiteAugmentation.from_config(layer.get_config())
    assert (again.rate, again.seed, again.name) == (0.3, 5, "site")
    assert "site" in [l.name for l in build_augmentation(TrainConfig(site_augmentation=0.3)).layers]


def test_cosine_schedule_warms_up_then_decays_to_zero():
    config = TrainConfig(schedule="cosine", warmup_epochs=1)
    schedule = learning_rate_schedule(1e-3, epochs=4, steps_per_epoch=10, config=config)
    rates = [float(schedule(step)) for step in range(41)]
    assert rates[0] == 0 and rates[5] == pytest.approx(5e-4) and rates[10] == pytest.approx(1e-3)
    assert all(a >= b for a, b in zip(rates[10:], rates[11:])) and rates[40] == pytest.approx(0, abs=1e-9)
    assert learning_rate_schedule(1e-3, 4, 10, TrainConfig()) == 1e-3  # constant: the plain rate


def test_label_smoothing_moves_the_loss_toward_uniform_targets():
    y_true, y_pred = np.array([0, 1]), np.array([[0.9, 0.1], [0.2, 0.8]], "float32")
    plain = float(keras.losses.SparseCategoricalCrossentropy()(y_true, y_pred))
    assert float(SmoothedSparseCrossentropy(0.0)(y_true, y_pred)) == pytest.approx(plain, rel=1e-5)
    smoothed = float(SmoothedSparseCrossentropy(0.2)(y_true, y_pred))
    one_hot = np.eye(2)[y_true] * 0.8 + 0.1
    assert smoothed == pytest.approx(float(-(one_hot * np.log(y_pred)).sum(axis=1).mean()), rel=1e-5)
