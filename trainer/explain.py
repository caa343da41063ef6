"""Grad-CAM heat maps from a run's Keras model (Selvaraju et al., 2017; the keras-io recipe).

The heat of a convolutional layer's output is the ReLU of its channels weighted by the mean
gradient of the explained class's *logit* (not the softmax, which saturates and then has no
gradient) over each channel. Explanations come from the Keras model, never from the device
package: a .tflite file has no gradients.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from artery_edge.edge.atomic import new_folder
from artery_edge.edge.errors import OptionError
from artery_edge.edge.text import literal_figures, terminal
from artery_edge.trainer.samples import DataError


@dataclass
class Explanation:
    path: Path
    pixels: np.ndarray  # uint8 (S, S, 3), what the model saw
    heat: np.ndarray  # float (S, S) in [0, 1], upsampled to the input
    label: str
    probability: float  # of ``label``, calibrated as exported


MIN_MAP_SIDE = 4


def conv_layers(base) -> list[str]:
    """Names of the base's convolutions, their BatchNorm, activations and residual sums
    (4-D outputs; padding layers left out: they only add a border of zeros)."""
    from keras import layers

    kinds = (layers.Conv2D, layers.DepthwiseConv2D, layers.BatchNormalization, layers.ReLU, layers.Activation,
             layers.Add)
    return [layer.name for layer in base.layers if isinstance(layer, kinds) and len(layer.output.shape) == 4]


def default_layer(base) -> str:
    """The last convolutional block (``out_relu`` in MobileNetV2) when its map has at least 4 x 4
    cells (inputs of 128 px and up); for smaller inputs the last layer that still does, since a
    2 x 2 map cannot say where in the patch anything is (measured on the 64 px synthetic demo:
    heat on the narrowing for 56 % of images with ``out_relu`` at 2 x 2, 83 % at 4 x 4)."""
    names = conv_layers(base)
    sized = [n for n in names if (base.get_layer(n).output.shape[1] or 0) >= MIN_MAP_SIDE]
    return sized[-1] if sized else names[-1]


def check_map_size(base, layer: str, names: Sequence[str]) -> None:
    """A 1 x 1 map has one cell: its heat is the same everywhere, an explanation of nothing, so
    the layer is refused; under 4 x 4 cells the heat is coarse, and a warning says so."""
    side = min(base.get_layer(layer).output.shape[1:3])
    if side >= MIN_MAP_SIDE:
        return
    larger = [n for n in names if min(base.get_layer(n).output.shape[1:3]) >= MIN_MAP_SIDE]
    hint = f" (e.g. {larger[-1]}, the last with {MIN_MAP_SIDE} x {MIN_MAP_SIDE} or more)" if larger else ""
    if side < 2:
        raise OptionError(f"--layer {layer}: its map is 1 x 1 at this input size, so the heat would be uniform; "
                          f"choose an earlier layer{hint}")
    import sys

    print(f"warning: --layer {layer}: its map is only {side} x {side} cells, the heat is coarse{hint}", file=sys.stderr)


def gradcam_model(model, layer: Optional[str] = None):
    """A model from raw pixels to (the layer's activations, the classifier's logits), sharing weights."""
    import keras

    from artery_edge.trainer.model import RESCALE, base_of

    base = base_of(model)
    names = conv_layers(base)
    layer = layer or default_layer(base)
    if layer not in names:
        raise DataError(f"no convolutional layer named {layer!r} in the model (e.g. {', '.join(names[-3:])})")
    check_map_size(base, layer, names)
    inner = keras.Model(base.inputs, [base.get_layer(layer).output, base.output])
    size = model.input_shape[1]
    inputs = keras.Input((size, size, 3))
    activations, features = inner(model.get_layer(RESCALE)(inputs), training=False)
    x = model.get_layer("pool")(features)
    classifier = model.get_layer("classifier")
    logits = keras.ops.matmul(x, classifier.kernel) + classifier.bias
    return keras.Model(inputs, [activations, logits])


def heat_maps(grad_model, pixels: np.ndarray, choose: Callable[[np.ndarray], Sequence[int]]
              ) -> tuple[np.ndarray, np.ndarray]:
    """Grad-CAM per image for the class ``choose`` picks from the (N, n_classes) logits (the
    explained model's decision rule), upsampled to the input and scaled to [0, 1]; also the logits."""
    import tensorflow as tf

    x = tf.convert_to_tensor(pixels.astype("float32"))
    with tf.GradientTape() as tape:
        activations, logits = grad_model(x, training=False)
        chosen = np.asarray(choose(logits.numpy()), dtype=np.int64)
        score = tf.gather(logits, chosen, axis=1, batch_dims=1)
    grads = tape.gradient(score, activations)
    weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
    cam = tf.nn.relu(tf.reduce_sum(weights * activations, axis=-1))[..., tf.newaxis]
    cam = tf.image.resize(cam, pixels.shape[1:3], method="bilinear")[..., 0].numpy()
    peak = cam.max(axis=(1, 2), keepdims=True)
    return np.where(peak > 0, cam / np.where(peak > 0, peak, 1), 0.0), logits.numpy()


def explain(run, images: Sequence[Path], layer: Optional[str] = None, batch_size: int = 32
            ) -> tuple[list[Explanation], list[str]]:
    """Grad-CAM for each readable image with the run's model, of the class the run decides
    (calibrated probabilities at its stored threshold, the rule ``infer`` and ``predict`` use, so a
    drawn label never contradicts theirs), and one message per image that could not be read."""
    from artery_edge.edge.decision import decide
    from artery_edge.trainer.calibration import softmax
    from artery_edge.trainer.pipeline import load_arrays
    from artery_edge.trainer.samples import Sample
    from artery_edge.trainer.scan import readable

    model = run.keras_model()
    grad_model = gradcam_model(model, layer)
    positive = run.positive

    def choose(logits: np.ndarray) -> np.ndarray:
        return np.atleast_1d(decide(softmax(logits, run.temperature), run.threshold, positive))

    samples, skipped = readable([Sample(Path(p), 0) for p in images])
    found = []
    for start in range(0, len(samples), batch_size):
        batch = samples[start:start + batch_size]
        pixels, _ = load_arrays(batch, run.image_size)
        heat, logits = heat_maps(grad_model, pixels, choose)
        probabilities = softmax(logits, run.temperature)
        for i, (sample, index) in enumerate(zip(batch, choose(logits))):
            found.append(Explanation(sample.path, pixels[i], heat[i], run.class_names[int(index)],
                                     float(probabilities[i, int(index)])))
    return found, skipped


def explain_inputs(run, paths: Sequence[Path], layer: Optional[str] = None) -> tuple[list[Explanation], list[str]]:
    """``explain``'s inputs (folders expanded) explained, and one message per input that failed;
    no image at all is one error line, raised before the model loads when no file was found."""
    from artery_edge.edge.batch import expand_inputs

    files, problems = expand_inputs(paths)
    if not files:
        raise DataError(problems[0] if len(problems) == 1 else "no image files found in the given paths")
    explanations, unreadable = explain(run, files, layer)
    failed = problems + unreadable
    if not explanations:
        raise DataError(failed[0] if len(failed) == 1 else f"no readable image to explain ({len(failed)} failed, "
                        f"e.g. {failed[0]})" if failed else "no image files found in the given paths")
    return explanations, failed


def overlay(pixels: np.ndarray, heat: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """The heat map in the jet colour map blended over the image, uint8 RGB."""
    from matplotlib import colormaps

    colours = colormaps["jet"](heat)[..., :3] * 255
    return np.clip((1 - alpha) * pixels + alpha * colours, 0, 255).astype(np.uint8)


GRID_FILE = "gradcam_grid.png"


def overlay_names(paths: Sequence[Path]) -> list[str]:
    """``<stem>_gradcam.png`` per image; images sharing a stem (``a/x.png``, ``b/x.png``, ``x.jpg``)
    get ``_gradcam-2.png``, ``-3``... in input order, so no overlay replaces another."""
    names: list[str] = []
    for path in paths:
        name = base = f"{Path(path).stem}_gradcam"
        number = 1
        while f"{name}.png" in names:
            number += 1
            name = f"{base}-{number}"
        names.append(f"{name}.png")
    return names


def write_explanations(explanations: Sequence[Explanation], base: Path, positive: str) -> tuple[Path, list[Path]]:
    """A new folder ``base`` (``base-2``... when taken) with one overlay PNG per image and
    ``gradcam_grid.png`` (label and probability on each tile); filled under a temporary name,
    so a failure leaves no partial folder. Returns the folder and the overlays' paths."""
    names = overlay_names([e.path for e in explanations])
    folder, _ = new_folder(base, lambda temp: draw_explanations(explanations, temp, names, positive))
    return folder, [folder / name for name in names]


def draw_explanations(explanations: Sequence[Explanation], folder: Path, names: Sequence[str], positive: str) -> None:
    import matplotlib

    literal_figures(matplotlib)
    import matplotlib.pyplot as plt
    from PIL import Image

    for e, name in zip(explanations, names):
        Image.fromarray(overlay(e.pixels, e.heat)).save(folder / name)
    columns = min(4, len(explanations))
    rows = -(-len(explanations) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(2.6 * columns, 2.9 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, e in zip(axes.ravel(), explanations):
        ax.imshow(overlay(e.pixels, e.heat))
        ax.set_title(f"{terminal(e.label)} p={e.probability:.2f}\n{terminal(e.path.name)[:22]}", fontsize=8,
                     color="firebrick" if e.label == positive else "black")
    fig.suptitle("Grad-CAM (research tool, not a diagnostic device)", fontsize=9)
    fig.tight_layout()
    fig.savefig(folder / GRID_FILE, dpi=100)
    plt.close(fig)
