"""Choose each layer's int8 weights with the calibration data, not by rounding to nearest.

TFLite quantizes a convolution kernel per output channel, symmetric: scale = max|w| / 127,
q = round(w / scale). Rounding each weight on its own is what hurts MobileNetV2: after
BatchNorm folding the stem's 3x3 depthwise kernels reach |w| = 56 (a step of 0.44) while
their nine taps nearly cancel on smooth images, so independent rounding errors add up
along exactly the direction the data excites. Measured on the 128 px run, weight rounding
of that one layer moved the logit by 0.46 on average, about all of the int8 error.

Here, per output channel, the integer vector q minimises the output error on the
calibration inputs, E[(x . (scale q - w))^2] (x centred), by coordinate descent from
round-to-nearest; the remaining mean error goes into the bias, which TFLite keeps in
int32. The largest tap keeps q = +-127, so the converter derives the same scale and its
own rounding of the adjusted float kernel returns exactly these integers (AdaRound and
GPTQ are the general forms of this idea).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable, Iterator, Optional

import keras
import numpy as np
from keras import layers

QMAX = 127
DAMPING = 0.01


@dataclass
class LayerRounding:
    name: str
    error_nearest: float
    error_chosen: float

    @property
    def reduction(self) -> float:
        return self.error_nearest / self.error_chosen if self.error_chosen > 0 else float("inf")


def _pad(inputs: np.ndarray, layer) -> np.ndarray:
    """Zero padding exactly as TensorFlow applies it for ``padding='same'``."""
    if layer.padding == "valid":
        return inputs
    pads = [(0, 0)]
    for axis, (k, s, d) in enumerate(zip(layer.kernel_size, layer.strides, layer.dilation_rate), 1):
        size = inputs.shape[axis]
        out = -(-size // s)
        total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
        pads.append((total // 2, total - total // 2))
    return np.pad(inputs, pads + [(0, 0)])


def _patches(inputs: np.ndarray, layer) -> np.ndarray:
    """(rows, kh*kw, C): each output position's receptive field, taps in kernel order."""
    if tuple(layer.kernel_size) == (1, 1) and tuple(layer.strides) == (1, 1):
        return inputs.reshape(-1, 1, inputs.shape[-1])  # pointwise: no copy (34 of MobileNetV2's 52)
    padded = _pad(inputs, layer)
    (kh, kw), (sh, sw), (dh, dw) = layer.kernel_size, layer.strides, layer.dilation_rate
    out_h = (padded.shape[1] - (kh - 1) * dh - 1) // sh + 1
    out_w = (padded.shape[2] - (kw - 1) * dw - 1) // sw + 1
    taps = [
        padded[:, i * dh: i * dh + (out_h - 1) * sh + 1: sh, j * dw: j * dw + (out_w - 1) * sw + 1: sw, :]
        for i in range(kh) for j in range(kw)
    ]
    stacked = np.stack(taps, axis=3)  # (N, out_h, out_w, taps, C)
    return stacked.reshape(-1, kh * kw, inputs.shape[-1])


def _input_vectors(layer, inputs: np.ndarray) -> np.ndarray:
    """(rows, groups, K): the vectors each output channel's weights multiply. Dense and
    Conv2D outputs share one group; a depthwise channel's outputs see only their channel."""
    if isinstance(layer, layers.Dense):
        return inputs.reshape(-1, 1, inputs.shape[-1])
    patches = _patches(inputs, layer)
    if isinstance(layer, layers.DepthwiseConv2D):
        return patches.transpose(0, 2, 1)
    return patches.reshape(len(patches), 1, -1)  # taps-major, channels-minor: kernel order


class InputStatistics:
    """Running mean and second moment of a layer's input vectors, over calibration batches."""

    def __init__(self, layer):
        self.layer = layer
        self.count = 0
        self.total = 0.0
        self.outer = 0.0

    def add(self, inputs) -> None:
        vectors = _input_vectors(self.layer, np.asarray(inputs, dtype=np.float64))
        self.count += len(vectors)
        self.total = self.total + vectors.sum(axis=0)
        grouped = vectors.transpose(1, 0, 2)  # (groups, rows, K): one BLAS product per group
        self.outer = self.outer + grouped.transpose(0, 2, 1) @ grouped

    def moments(self, damping: float = DAMPING) -> tuple[np.ndarray, np.ndarray]:
        """Mean (groups, K) and centred second moment (groups, K, K), with ``damping`` times
        its mean diagonal added to the diagonal so that it stays positive definite (as GPTQ)."""
        mean = self.total / self.count
        second = self.outer / self.count - np.einsum("gk,gl->gkl", mean, mean)
        diagonal = np.einsum("gkk->gk", second)
        ridge = damping * np.maximum(diagonal.mean(axis=1), 1e-12)
        return mean, second + ridge[:, None, None] * np.eye(second.shape[-1])


def _kernel_matrix(layer, kernel: np.ndarray) -> np.ndarray:
    """(outputs, K): each output channel's weight vector, in the order of ``_input_vectors``."""
    if isinstance(layer, layers.DepthwiseConv2D):
        kh, kw, channels, multiplier = kernel.shape
        return kernel.reshape(kh * kw, channels * multiplier).T
    return kernel.reshape(-1, kernel.shape[-1]).T


def _group_of_output(layer, outputs: int) -> np.ndarray:
    if isinstance(layer, layers.DepthwiseConv2D):
        return np.arange(outputs) // layer.depth_multiplier
    return np.zeros(outputs, dtype=int)


class OutputCurvature:
    """The matrix H of each output channel's error e^T H e, stored once per input group:
    a Conv2D's 1,280 outputs share one (K, K) matrix instead of 1,280 copies of it."""

    def __init__(self, second: np.ndarray, group: np.ndarray):
        self.second = second
        self.group = group
        self.shared = len(second) == 1

    def apply(self, error: np.ndarray) -> np.ndarray:
        """H_o e_o for every output o: (outputs, K)."""
        if self.shared:
            return error @ self.second[0]
        return np.einsum("okl,ol->ok", self.second[self.group], error)

    def column(self, k: int, rows: np.ndarray) -> np.ndarray:
        """Column k of H_o for the outputs ``rows``: (len(rows), K), or (1, K) when shared."""
        return self.second[0, np.newaxis, :, k] if self.shared else self.second[self.group[rows], :, k]

    def diagonal(self, k: int) -> np.ndarray:
        return self.second[self.group, k, k]

    def energy(self, error: np.ndarray) -> float:
        """Mean over outputs of e_o^T H_o e_o."""
        return float(max(np.sum(self.apply(error) * error), 0.0) / len(error))


def choose_integers(weights: np.ndarray, curvature: OutputCurvature, sweeps: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Integer weights per row of ``weights`` (outputs, K) minimising e^T H e with
    e = scale*q - w. Returns (q, scale)."""
    scale = np.abs(weights).max(axis=1) / QMAX
    scale[scale == 0] = 1.0
    exact = weights / scale[:, None]
    q = np.clip(np.round(exact), -QMAX, QMAX)
    pinned = np.abs(np.abs(exact) - QMAX) < 1e-6  # the tap that sets the scale stays at +-127
    gradient = curvature.apply((q - exact) * scale[:, None])
    for _ in range(sweeps):
        changed = False
        for k in range(q.shape[1]):
            curvature_k = curvature.diagonal(k) * scale ** 2
            best_gain = np.zeros(len(q))
            best_step = np.zeros(len(q))
            for step in (-1.0, 1.0):
                gain = 2 * step * scale * gradient[:, k] + curvature_k
                allowed = (np.abs(q[:, k] + step) <= QMAX) & ~pinned[:, k] & (gain < best_gain - 1e-12 * curvature_k)
                best_step = np.where(allowed, step, best_step)
                best_gain = np.where(allowed, gain, best_gain)
            moving = np.flatnonzero(best_step)
            if len(moving):
                changed = True
                q[moving, k] += best_step[moving]
                gradient[moving] += (best_step[moving] * scale[moving])[:, None] * curvature.column(k, moving)
        if not changed:
            break
    return q, scale


def round_layer(layer, statistics: InputStatistics) -> LayerRounding:
    """Replace ``layer``'s kernel by data-chosen int8 grid values and correct its bias."""
    kernel, bias = layer.get_weights()
    weights = _kernel_matrix(layer, kernel).astype(np.float64)
    mean, second = statistics.moments()
    group = _group_of_output(layer, len(weights))
    curvature = OutputCurvature(second, group)
    q, scale = choose_integers(weights, curvature)
    chosen = q * scale[:, None]
    nearest = np.clip(np.round(weights / scale[:, None]), -QMAX, QMAX) * scale[:, None]
    new_bias = bias - np.sum(mean[group] * (chosen - weights), axis=1)
    layer.set_weights([chosen.T.reshape(kernel.shape).astype(np.float32), new_bias.astype(np.float32)])
    return LayerRounding(layer.name, np.sqrt(curvature.energy(nearest - weights)),
                         np.sqrt(curvature.energy(chosen - weights)))


def _supported(layer) -> bool:
    if isinstance(layer, layers.Dense):
        return layer.use_bias
    if isinstance(layer, (layers.Conv2D, layers.DepthwiseConv2D)):
        grouped = getattr(layer, "groups", 1) != 1
        return layer.use_bias and layer.data_format == "channels_last" and not grouped
    return False


def weighted_layers(model: keras.Model) -> list:
    """Every biased Dense, Conv2D (channels last, ungrouped) and DepthwiseConv2D, in graph
    order, nested models opened. Other layers keep the converter's own rounding."""
    found = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            found += weighted_layers(layer)
        elif _supported(layer):
            found.append(layer)
    return found


@contextlib.contextmanager
def recording_inputs(chosen: list) -> Iterator[dict[str, InputStatistics]]:
    """While active, every call of a chosen layer adds its input to that layer's statistics."""
    statistics = {layer.name: InputStatistics(layer) for layer in chosen}
    for layer in chosen:
        def recorded(inputs, *args, _layer=layer, _call=layer.call, **kwargs):
            statistics[_layer.name].add(inputs)
            return _call(inputs, *args, **kwargs)

        layer.call = recorded
    try:
        yield statistics
    finally:
        for layer in chosen:
            del layer.call  # back to the class's method


def round_model(
    model: keras.Model, images: np.ndarray, batch_size: int = 16, progress: Optional[Callable[[int, int], None]] = None
) -> list[LayerRounding]:
    """Choose the int8 weights of every biased layer of a BatchNorm-folded model, from the
    inputs each layer receives in the float model on ``images``."""
    chosen = weighted_layers(model)
    with recording_inputs(chosen) as statistics:
        for start in range(0, len(images), batch_size):
            model(images[start:start + batch_size].astype(np.float32), training=False)
    results = []
    for done, layer in enumerate(chosen, 1):
        results.append(round_layer(layer, statistics.pop(layer.name)))
        if progress:
            progress(done, len(chosen))
    return results
