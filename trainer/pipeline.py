"""Samples into the model's input: decoded arrays in memory, or the tf.data pipeline
(the only part of the dataset code that imports TensorFlow, lazily)."""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from artery_edge.edge.imaging import load_image
from artery_edge.trainer.samples import Sample


def load_arrays(samples: Sequence[Sample], image_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Decode samples into memory: uint8 (N, S, S, 3) images and int32 labels."""
    images = np.stack([load_image(s.path, image_size) for s in samples]) if samples else np.zeros(
        (0, image_size, image_size, 3), np.uint8
    )
    return images, np.array([s.label for s in samples], dtype=np.int32)


def make_dataset(
    samples: Sequence[Sample], image_size: int, batch_size: int, shuffle: bool = False, seed: int = 42,
    targets: Optional[np.ndarray] = None,
):
    """tf.data pipeline: parallel Pillow decode -> in-memory cache -> shuffle -> batch -> prefetch.

    Images stay uint8 in the cache (4x smaller) and become float32 0..255 per batch; the
    model does its own normalisation. ``targets`` ((N, n_classes) float, e.g. distillation's
    mixed targets) replace the integer labels.
    """
    import tensorflow as tf

    def decode(path: bytes) -> np.ndarray:
        return load_image(path.decode(), image_size)

    def load(path, label):
        image = tf.numpy_function(decode, [path], tf.uint8, stateful=False)
        image.set_shape((image_size, image_size, 3))
        return image, label

    paths = [str(s.path) for s in samples]
    labels = np.array([s.label for s in samples], dtype=np.int32) if targets is None else targets
    dataset = tf.data.Dataset.from_tensor_slices((paths, labels))
    dataset = dataset.map(load, num_parallel_calls=tf.data.AUTOTUNE).cache()
    if shuffle:
        dataset = dataset.shuffle(len(samples), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size).map(
        lambda x, y: (tf.cast(x, tf.float32), y), num_parallel_calls=tf.data.AUTOTUNE
    )
    options = tf.data.Options()  # several workers: each takes its share of the batches, not of the files
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.prefetch(tf.data.AUTOTUNE).with_options(options)

