"""trainer.model: trainable layers per stage, BatchNorm in inference mode, the serving graph."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tensorflow", reason="TensorFlow not installed (train extra)")

import keras  # noqa: E402

from trainer.config import ConfigError, TrainConfig  # noqa: E402
from trainer.model import (  # noqa: E402
    AUGMENTATION, base_of, build_model, compile_model, resolve_weights, serving_model, set_stage,
)

TINY = TrainConfig(image_size=32, alpha=0.35, weights="none", seed=1)


@pytest.fixture(scope="module")
def model():
    return build_model(2, TINY)


def trainable_names(model):
    return {layer.name for layer in base_of(model).layers if layer.trainable and layer.weights}


def test_stage_one_trains_only_the_head(model):
    set_stage(model, 1)
    assert not base_of(model).trainable
    assert {w.path.split("/")[0] for w in model.trainable_weights} == {"classifier"}


def test_stage_two_unfreezes_from_fine_tune_at_but_never_batchnorm(model):
    base = base_of(model)
    set_stage(model, 2, fine_tune_at=100)
    names = trainable_names(model)
    assert names == {
        layer.name for i, layer in enumerate(base.layers)
        if i >= 100 and layer.weights and not isinstance(layer, keras.layers.BatchNormalization)
    }
    assert names and not any(isinstance(base.get_layer(n), keras.layers.BatchNormalization) for n in names)
    set_stage(model, 2, fine_tune_at=0)
    assert len(trainable_names(model)) > len(names)


def test_batchnorm_statistics_do_not_move_while_fine_tuning(model):
    set_stage(model, 2)
    compile_model(model, 1e-3)
    bn = [l for l in base_of(model).layers if isinstance(l, keras.layers.BatchNormalization)]
    before = [np.array(l.moving_mean) for l in bn]
    conv_before = np.array(base_of(model).get_layer("Conv1").kernel)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (8, 32, 32, 3)).astype("float32")
    model.fit(x, rng.integers(0, 2, 8), epochs=1, verbose=0)
    assert all(np.array_equal(b, np.array(l.moving_mean)) for b, l in zip(before, bn))
    assert not np.array_equal(conv_before, np.array(base_of(model).get_layer("Conv1").kernel))


def test_serving_graph_has_no_augmentation_and_matches_inference(model):
    serving = serving_model(model)
    assert AUGMENTATION not in {layer.name for layer in serving.layers}
    x = np.random.default_rng(2).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(serving(x, training=False), model(x, training=False), atol=1e-6)


def test_augmentation_changes_images_only_in_training(model):
    augment = model.get_layer(AUGMENTATION)
    x = np.random.default_rng(3).uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    assert np.array_equal(np.asarray(augment(x, training=False)), x)
    assert not np.allclose(np.asarray(augment(x, training=True)), x)


def test_missing_imagenet_weights_give_a_hint(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(ConfigError, match="provision-weights"):
        resolve_weights(TrainConfig(image_size=64, alpha=0.35))
