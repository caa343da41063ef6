"""Fold each BatchNormalization into the convolution before it, in a copy of a Keras model.

The TFLite converter folds BatchNorm itself; doing it here first gives us the exact
kernels the converter will quantize, so that their int8 rounding can be chosen with the
data (``converters.weight_rounding``) instead of left to round-to-nearest.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

FOLDABLE = (layers.Conv2D, layers.DepthwiseConv2D)


class PassThrough(layers.Layer):
    """Stands in for a folded BatchNorm; accepts the arguments BatchNorm is called with."""

    def call(self, inputs, training=None, mask=None):
        return inputs


def _folded_pairs(model: keras.Model) -> dict[str, layers.BatchNormalization]:
    """Convolution name -> the BatchNorm that reads only its output."""
    pairs = {}
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization) and len(layer._inbound_nodes) == 1:
            producer = layer.input._keras_history.operation
            if isinstance(producer, FOLDABLE) and len(producer._inbound_nodes) == 1:
                pairs[producer.name] = layer
    return pairs


def _fold(conv, bn: layers.BatchNormalization) -> list[np.ndarray]:
    gamma = bn.gamma.numpy() if bn.scale else 1.0
    beta = bn.beta.numpy() if bn.center else 0.0
    scale = gamma / np.sqrt(bn.moving_variance.numpy() + bn.epsilon)
    weights = conv.get_weights()
    kernel = weights[0]
    bias = weights[1] if conv.use_bias else np.zeros(len(scale))
    if isinstance(conv, layers.DepthwiseConv2D):  # kernel (kh, kw, C, M) -> output channel c * M + m
        scale = scale.reshape(1, 1, kernel.shape[2], kernel.shape[3])
    kernel = kernel * scale
    scale = scale.reshape(-1)
    bias = (bias - bn.moving_mean.numpy()) * scale + beta
    return [kernel.astype(np.float32), bias.astype(np.float32)]


def _is_nested_functional(layer) -> bool:
    return isinstance(layer, keras.Model) and not isinstance(layer, keras.Sequential)


def fold_batchnorm(model: keras.Model) -> keras.Model:
    """A functional copy of ``model`` (nested functional models included) computing the
    same function, with every Conv/DepthwiseConv -> BatchNorm pair as one biased convolution."""
    pairs = _folded_pairs(model)
    folded_bn = {bn.name for bn in pairs.values()}

    def clone(layer):
        if _is_nested_functional(layer):
            return fold_batchnorm(layer)
        if layer.name in folded_bn:
            return PassThrough(name=layer.name)
        config = layer.get_config()
        if layer.name in pairs:
            config["use_bias"] = True
        return layer.__class__.from_config(config)

    folded = keras.models.clone_model(model, clone_function=clone)
    for layer in model.layers:
        if layer.name in folded_bn or _is_nested_functional(layer) or not layer.weights:
            continue  # a nested functional model was folded, weights included, by the recursion
        folded.get_layer(layer.name).set_weights(_fold(layer, pairs[layer.name]) if layer.name in pairs else layer.get_weights())
    return folded
