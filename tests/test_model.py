"""trainer.model: trainable layers per stage, BatchNorm in inference mode, the serving graph, the
learning-rate schedule and the label-smoothed loss."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorflow", reason="TensorFlow not installed (train extra)")

import keras  # noqa: E402

from artery_edge.trainer.config import ConfigError, TrainConfig  # noqa: E402
from artery_edge.trainer.model import (  # noqa: E402
    AUGMENTATION, SCRATCH_BN_MOMENTUM, SmoothedSparseCrossentropy, base_of, build_base, build_model, compile_model,
    learning_rate_schedule, serving_model, set_stage,
)

def write_legacy_weights(path: Path, alpha: float = 0.35, size: int = 32) -> Path:
    """A no-top MobileNetV2 weights file in the legacy .h5 layout Keras downloads (random values)."""
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    base = keras.applications.MobileNetV2(input_shape=(size, size, 3), alpha=alpha, include_top=False, weights=None)
    with h5py.File(path, "w") as handle:
        legacy_h5_format.save_weights_to_hdf5_group(handle, base)
    return path


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory) -> Path:
    return write_legacy_weights(tmp_path_factory.mktemp("weights") / "mobilenet_v2_0.35_no_top.h5")


@pytest.fixture(scope="module")
def model(weights_file):
    return build_model(2, TrainConfig(image_size=32, alpha=0.35, weights=str(weights_file), seed=1))


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


def test_imagenet_weights_are_left_to_keras_to_download(tmp_path, monkeypatch, weights_file):
    """An empty cache is not an error: Keras is asked for the file (the download is faked here)."""
    from keras.src.utils import file_utils

    requested = []

    def fake_download(fname, origin, **kwargs):
        requested.append(fname)
        return str(weights_file)

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(file_utils, "get_file", fake_download)
    base = build_base(TrainConfig(image_size=32, alpha=0.35))
    assert requested == ["mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5"]
    assert not any(l.momentum == SCRATCH_BN_MOMENTUM for l in base.layers if isinstance(l, keras.layers.BatchNormalization))


def test_from_scratch_trains_everything_and_batchnorm_learns(monkeypatch):
    """--weights none: a frozen random base learns nothing, so every layer trains in both stages
    and BatchNorm follows the batch statistics while fitting (moving averages move)."""
    model = build_model(2, TrainConfig(image_size=32, alpha=0.35, weights="none", seed=1))
    for stage in (1, 2):
        set_stage(model, stage, pretrained=False)
        assert base_of(model).trainable and all(l.trainable for l in base_of(model).layers)
    bn = [l for l in base_of(model).layers if isinstance(l, keras.layers.BatchNormalization)]
    assert {l.momentum for l in bn} == {SCRATCH_BN_MOMENTUM}
    compile_model(model, 1e-3)
    before = [np.array(l.moving_mean) for l in bn]
    rng = np.random.default_rng(0)
    model.fit(rng.uniform(0, 255, (8, 32, 32, 3)).astype("float32"), rng.integers(0, 2, 8), epochs=1, verbose=0)
    assert not all(np.array_equal(b, np.array(l.moving_mean)) for b, l in zip(before, bn))


def test_failed_imagenet_download_says_how_to_place_the_file(tmp_path, monkeypatch):
    from keras.src.utils import file_utils

    def offline(fname, origin, **kwargs):
        raise Exception(f"URL fetch failure on {origin}: None -- [Errno -2] Name or service not known")

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(file_utils, "get_file", offline)
    with pytest.raises(ConfigError) as caught:
        build_base(TrainConfig(image_size=64, alpha=0.35))
    message = str(caught.value)
    assert "\n" not in message
    for hint in ("could not be downloaded", str(tmp_path / "models"), "KERAS_HOME", "--weights FILE.h5", "--weights none"):
        assert hint in message


def test_all_augmentation_off_is_the_identity():
    from artery_edge.trainer.model import build_augmentation

    config = TrainConfig(flip=False, rotation=0, zoom=0, contrast=0, brightness=0)
    x = np.random.default_rng(4).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    assert np.array_equal(np.asarray(build_augmentation(config)(x, training=True)), x)


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
