"""trainer.augment.SiteAugmentation: imitating another site's images, in training only."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tensorflow", reason="TensorFlow not installed (train extra)")

from artery_edge.trainer.augment import SiteAugmentation  # noqa: E402
from artery_edge.trainer.config import TrainConfig  # noqa: E402
from artery_edge.trainer.model import build_augmentation  # noqa: E402


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
