"""Augmentation that imitates another site's images: lower native resolution, another
exposure curve, sensor noise and focus. Patches from another hospital (32 px, other
equipment) were close to chance for a model trained without it."""

from __future__ import annotations

import keras
from keras import ops

LOW_RESOLUTION = 32  # the other site's native patch size
GAMMA_RANGE = (0.7, 1.4)
NOISE_MAX = 8.0  # standard deviation, in 0..255 units


@keras.saving.register_keras_serializable(package="artery_edge")
class SiteAugmentation(keras.layers.Layer):
    """Per image, each with probability ``rate``: down-sampling to 32 px and back, a random
    gamma, Gaussian noise and a 3 x 3 blur. Works on 0..255 images; identity at inference."""

    def __init__(self, rate: float = 0.5, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.rate = rate
        self.seed = seed
        self.generator = keras.random.SeedGenerator(seed)

    def _chosen(self, batch) -> "keras.KerasTensor":
        """A (batch, 1, 1, 1) mask: 1 for the images this transform applies to."""
        return ops.cast(keras.random.uniform((batch, 1, 1, 1), seed=self.generator) < self.rate, self.compute_dtype)

    def call(self, images, training=None):
        if not training or self.rate == 0:
            return images
        images = ops.cast(images, self.compute_dtype)
        batch, size, channels = ops.shape(images)[0], images.shape[1], images.shape[-1]
        low = ops.image.resize(ops.image.resize(images, (LOW_RESOLUTION, LOW_RESOLUTION), antialias=True),
                               (size, size), interpolation="bilinear")
        mask = self._chosen(batch)
        images = mask * low + (1 - mask) * images

        log_gamma = keras.random.uniform((batch, 1, 1, 1), minval=ops.log(GAMMA_RANGE[0]),
                                         maxval=ops.log(GAMMA_RANGE[1]), seed=self.generator)
        gamma = ops.where(self._chosen(batch) > 0, ops.exp(log_gamma), 1.0)
        images = 255.0 * ops.power(ops.clip(images / 255.0, 1e-6, 1.0), gamma)

        sigma = keras.random.uniform((batch, 1, 1, 1), maxval=NOISE_MAX, seed=self.generator) * self._chosen(batch)
        images = images + sigma * keras.random.normal(ops.shape(images), seed=self.generator)

        kernel = ops.convert_to_tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]) / 16.0
        kernel = ops.tile(ops.reshape(kernel, (3, 3, 1, 1)), (1, 1, channels, 1))
        edges = ops.pad(images, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="reflect")  # zeros would darken the border
        blurred = ops.depthwise_conv(edges, ops.cast(kernel, images.dtype), padding="valid")
        mask = self._chosen(batch)
        images = mask * blurred + (1 - mask) * images
        return ops.clip(images, 0.0, 255.0)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}
