"""Small Keras models and images for the converter tests (TensorFlow needed: import after
``pytest.importorskip("tensorflow")``)."""

from __future__ import annotations

import keras
import numpy as np


def tiny_mobilenet(seed: int = 0) -> keras.Model:
    """MobileNetV2 (random weights) with BatchNorm statistics far from identity, as after training."""
    keras.utils.set_random_seed(seed)
    base = keras.applications.MobileNetV2(input_shape=(32, 32, 3), alpha=0.35, include_top=False, weights=None)
    rng = np.random.default_rng(seed)
    for layer in base.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, variance = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 2, gamma.shape), rng.normal(0, 0.5, beta.shape),
                               rng.normal(0, 0.5, mean.shape), rng.uniform(0.1, 3, variance.shape)])
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.GlobalAveragePooling2D()(base(inputs))
    return keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))


def images(count: int, seed: int = 1) -> np.ndarray:
    """Smooth random images in [-1, 1]: neighbouring pixels correlate, as in real ones."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(-1, 1, (count, 8, 8, 3)).astype(np.float32)
    return np.asarray(keras.ops.image.resize(coarse, (32, 32), interpolation="bilinear"))
