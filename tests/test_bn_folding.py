"""converters.bn_folding: BatchNorm folded into the preceding convolution, the function kept."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tensorflow", reason="TensorFlow not installed (train extra)")

import keras  # noqa: E402

from artery_edge.converters.bn_folding import fold_batchnorm  # noqa: E402
from artery_edge.converters.weight_rounding import weighted_layers  # noqa: E402
from tests.keras_builder import images, tiny_mobilenet  # noqa: E402


def test_folding_keeps_the_function_and_removes_batchnorm():
    model = tiny_mobilenet()
    folded = fold_batchnorm(model)
    x = images(8)
    assert np.abs(folded.predict(x, verbose=0) - model.predict(x, verbose=0)).max() < 1e-5
    nested = [layer for layer in folded.layers if isinstance(layer, keras.Model)][0]
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in nested.layers)
    assert len(weighted_layers(folded)) == 53  # 52 convolutions + the classifier, all with a bias now


def test_folding_keeps_the_weights_of_a_nested_sequential():
    inputs = keras.Input((8, 8, 3))
    head = keras.Sequential([keras.layers.Conv2D(4, 3), keras.layers.BatchNormalization()])
    model = keras.Model(inputs, head(inputs))
    head.layers[1].set_weights([np.full(4, 2.0), np.ones(4), np.zeros(4), np.ones(4)])
    x = images(2)[:, :8, :8]
    assert np.abs(fold_batchnorm(model).predict(x, verbose=0) - model.predict(x, verbose=0)).max() < 1e-5
