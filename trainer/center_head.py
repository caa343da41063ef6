"""A second whole-frame head, CenterNet-style: a centre heat map and box sizes at stride 4.

The map head (trainer.frame_model) paints each lesion's outline and finds lesions as connected
regions of the thresholded map; a lesion there is as good as the outline it paints. This head
asks for less: one peak per lesion at its box centre, and the box's width and height read at the
peak (Zhou et al., "Objects as Points", 2019). The encoder and its skips are the map model's
(:func:`trainer.frame_model.encoder_features`); the decoder stops at stride 4, so a 256 px frame
gives a 64 x 64 x 3 output: channel 0 the sigmoid centre heat, channels 1 and 2 the sigmoid box
width and height as fractions of the frame.

Targets are rendered in NumPy (one Gaussian per box centre, sigma from the box size as CenterNet
sets it), the loss is CenterNet's (penalty-reduced focal loss on the heat, L1 on the sizes at the
centres), and the decoding is NumPy (3 x 3 local maxima of the heat) into the same
:class:`edge.lesions.FoundLesion` the map head's :func:`edge.lesions.decode_map` gives, so both
heads are scored by one piece of code (studies/frame_heads.py).
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import keras
import numpy as np
from keras import layers, ops

from artery_edge.edge.annotations import Frame
from artery_edge.edge.lesions import FoundLesion
from artery_edge.trainer.config import TrainConfig
from artery_edge.trainer.frame_model import DECODER_FILTERS, decoder_level, encoder_features

STRIDE = 4  # output pixels per input pixel across: the decoder's strides 16, 8, 4
OUTPUT = "centres"
HEAT_PRIOR = -2.19  # CenterNet's heat bias: sigmoid -> 0.1, so the focal loss starts near its background level
SIZE_PRIOR = -2.2  # sigmoid -> 0.1: ARCADE's median box side is ~50 px of a 512 px frame
MIN_OVERLAP = 0.7  # CenterNet: a box moved within the Gaussian's radius keeps IoU >= 0.7 with the truth
FOCAL_ALPHA, FOCAL_BETA = 2.0, 4.0
SIZE_WEIGHT = 5.0
MAX_LESIONS = 16  # rows of a frame's padded box array (ARCADE has at most 8 lesions in a frame)
MAX_PEAKS = 20  # K: peaks kept per frame


def build_center_model(config: TrainConfig) -> keras.Model:
    """The centre model for ``config.image_size`` (a multiple of 32): the map model's encoder and
    decoder levels down to stride 4, then a 1 x 1 convolution to (heat, width, height) logits."""
    inputs, skips, x = encoder_features(config)
    for skip, filters in zip(reversed(skips), DECODER_FILTERS[:3]):  # strides 16, 8, 4
        x = decoder_level(x, skip, filters)
    head = layers.Conv2D(3, 1, name="centre_logits")
    logits = head(x)
    head.bias.assign(np.array([HEAT_PRIOR, SIZE_PRIOR, SIZE_PRIOR], np.float32))
    outputs = layers.Activation("sigmoid", dtype="float32", name=OUTPUT)(logits)
    return keras.Model(inputs, outputs, name="frame_centres")


# --- targets (NumPy) -------------------------------------------------------------------------------

def gaussian_radius(height: float, width: float, min_overlap: float = MIN_OVERLAP) -> float:
    """CenterNet's radius (its ``gaussian_radius``, quirks included, so sigma is the published one):
    how far a corner may move for the box to keep ``min_overlap`` IoU; sizes in output pixels."""
    b1 = height + width
    c1 = width * height * (1 - min_overlap) / (1 + min_overlap)
    r1 = (b1 + math.sqrt(b1 ** 2 - 4 * c1)) / 2
    b2 = 2 * (height + width)
    c2 = (1 - min_overlap) * width * height
    r2 = (b2 + math.sqrt(b2 ** 2 - 16 * c2)) / 2
    a3 = 4 * min_overlap
    b3 = -2 * min_overlap * (height + width)
    c3 = (min_overlap - 1) * width * height
    r3 = (b3 + math.sqrt(b3 ** 2 - 4 * a3 * c3)) / 2
    return min(r1, r2, r3)


def frame_boxes(frame: Frame) -> np.ndarray:
    """The frame's lesions as rows (centre x, centre y, width, height), fractions of the frame:
    the size-free form the augmentation moves and :func:`render_target` draws."""
    rows = [((x0 + x1) / 2 / frame.width, (y0 + y1) / 2 / frame.height, (x1 - x0) / frame.width,
             (y1 - y0) / frame.height) for x0, y0, x1, y1 in (lesion.box for lesion in frame.lesions)]
    return np.array(rows, np.float32).reshape(-1, 4)


def padded_boxes(frames: Sequence[Frame]) -> np.ndarray:
    """(N, :data:`MAX_LESIONS`, 4) boxes for a tf.data pipeline; padding rows are zeros (no width)."""
    out = np.zeros((len(frames), MAX_LESIONS, 4), np.float32)
    for number, frame in enumerate(frames):
        boxes = frame_boxes(frame)
        if len(boxes) > MAX_LESIONS:
            raise ValueError(f"{frame.path}: {len(boxes)} lesions, more than the {MAX_LESIONS} a frame may hold")
        out[number, :len(boxes)] = boxes
    return out


def render_target(boxes: np.ndarray, map_size: int) -> np.ndarray:
    """The (map_size, map_size, 3) target of boxes given as :func:`frame_boxes` rows: per box a
    Gaussian peaking at exactly 1 on the map pixel holding its centre (the focal loss's positive),
    its width and height fractions written where that Gaussian is the highest. Rows without a
    width (padding) or with a centre off the map (moved out by the augmentation) are skipped."""
    target = np.zeros((map_size, map_size, 3), np.float32)
    heat = target[..., 0]
    for cx, cy, w, h in np.asarray(boxes, np.float32).reshape(-1, 4):
        if w <= 0 or h <= 0 or not (0 <= cx < 1 and 0 <= cy < 1):
            continue
        x, y = int(cx * map_size), int(cy * map_size)
        radius = max(0, int(gaussian_radius(math.ceil(h * map_size), math.ceil(w * map_size))))
        sigma = (2 * radius + 1) / 6
        offsets = np.arange(-radius, radius + 1)
        gaussian = np.exp(-(offsets[None, :] ** 2 + offsets[:, None] ** 2) / (2 * sigma * sigma))
        gaussian[gaussian < np.finfo(np.float32).eps] = 0
        x0, x1 = max(0, x - radius), min(map_size, x + radius + 1)
        y0, y1 = max(0, y - radius), min(map_size, y + radius + 1)
        patch = gaussian[y0 - y + radius:y1 - y + radius, x0 - x + radius:x1 - x + radius]
        window = target[y0:y1, x0:x1]
        mine = patch >= window[..., 0]
        window[..., 0] = np.maximum(window[..., 0], patch)
        window[mine, 1], window[mine, 2] = w, h
    return target


def frame_target(frame: Frame, image_size: int) -> np.ndarray:
    """One frame's target for a model of ``image_size`` px (its output is ``image_size / 4`` across)."""
    return render_target(frame_boxes(frame), image_size // STRIDE)


# --- loss -----------------------------------------------------------------------------------------

@keras.saving.register_keras_serializable(package="artery_edge")
def centre_loss(y_true, y_pred):
    """CenterNet's loss over the batch: the penalty-reduced focal loss on the heat (alpha 2, beta 4;
    negatives near a centre weigh (1 - y)^4 less, since a peak one pixel off is nearly right),
    divided by the number of centres, plus L1 on the two sizes at the centre pixels.

    The size weight is 5: CenterNet weighs the L1 of sizes in output pixels by 0.1; a fraction of
    the frame is output pixels / 64 at 256 px, so 0.1 x 64 ~ 6 keeps the size term as large next
    to the focal term as in the paper (0.1 on fractions would leave the sizes untrained)."""
    y_true = ops.cast(y_true, y_pred.dtype)
    heat = ops.clip(y_pred[..., 0], 1e-4, 1 - 1e-4)
    truth = y_true[..., 0]
    positive = ops.cast(truth >= 1 - 1e-4, y_pred.dtype)
    count = ops.maximum(ops.sum(positive), 1.0)
    pos_loss = ops.log(heat) * (1 - heat) ** FOCAL_ALPHA * positive
    neg_loss = ops.log(1 - heat) * heat ** FOCAL_ALPHA * (1 - truth) ** FOCAL_BETA * (1 - positive)
    focal = -(ops.sum(pos_loss) + ops.sum(neg_loss)) / count
    size = ops.sum(ops.abs(y_pred[..., 1:] - y_true[..., 1:]) * positive[..., None]) / (2 * count)
    return focal + SIZE_WEIGHT * size


# --- augmentation (tf.data) -----------------------------------------------------------------------

def move_boxes(image, boxes, flip_lr, flip_ud, angle, scale):
    """One geometric draw applied to a float frame (H, W, C) and its :func:`frame_boxes` rows alike:
    flips, then a turn by ``angle`` and a zoom by ``scale`` about the centre (as augment_pair warps).
    Centres move with the frame; sizes are multiplied by ``scale`` (the box is not re-fitted round
    the turned lesion). The target is rendered afterwards from the moved boxes, not warped: a
    Gaussian of sigma ~0.5 map px sampled bilinearly off its grid loses its peak of 1 (the focal
    loss's positives), and a zoom out can skip it altogether."""
    import tensorflow as tf

    size = tf.cast(tf.shape(image)[0], tf.float32)
    image = tf.cond(flip_lr, lambda: tf.reverse(image, [1]), lambda: image)
    image = tf.cond(flip_ud, lambda: tf.reverse(image, [0]), lambda: image)
    cx = tf.where(flip_lr, 1.0 - boxes[:, 0], boxes[:, 0])
    cy = tf.where(flip_ud, 1.0 - boxes[:, 1], boxes[:, 1])
    centre = (size - 1) / 2.0
    cos, sin = tf.cos(angle) / scale, tf.sin(angle) / scale
    transform = tf.stack([cos, -sin, centre - cos * centre + sin * centre,
                          sin, cos, centre - sin * centre - cos * centre, 0.0, 0.0])
    image = tf.raw_ops.ImageProjectiveTransformV3(
        images=image[None], transforms=transform[None], output_shape=tf.shape(image)[:2], fill_value=0.0,
        interpolation="BILINEAR", fill_mode="REFLECT")[0]
    # the transform maps an output point p to the input point c + R (p - c) / scale, so a centre q
    # lands at c + scale R^T (q - c); in fractions of the frame c is 0.5
    dx, dy = cx - 0.5, cy - 0.5
    moved_x = 0.5 + scale * (tf.cos(angle) * dx + tf.sin(angle) * dy)
    moved_y = 0.5 + scale * (-tf.sin(angle) * dx + tf.cos(angle) * dy)
    return image, tf.stack([moved_x, moved_y, boxes[:, 2] * scale, boxes[:, 3] * scale], axis=1)


def augment_centres(config: TrainConfig, seed: int) -> Callable:
    """A tf.data map (image uint8, boxes (MAX_LESIONS, 4)) -> (frame, target): the map head's
    geometric draw (flips, turn, zoom) on frame and boxes alike, the target rendered in NumPy
    from the moved boxes, then the same exposure, contrast, gamma, noise and blur as
    :func:`trainer.frame_training.augment_pair` (its :func:`~trainer.frame_training.photometric`)."""
    import tensorflow as tf

    from artery_edge.trainer.frame_training import photometric

    map_size = config.image_size // STRIDE

    def apply(image, boxes):
        image = tf.cast(image, tf.float32)
        flip_lr = tf.random.uniform(()) < 0.5 if config.flip else tf.constant(False)
        flip_ud = tf.random.uniform(()) < 0.5 if config.flip else tf.constant(False)
        angle = tf.random.uniform((), -1.0, 1.0) * config.rotation * 2 * math.pi
        scale = tf.random.uniform((), 1.0 - config.zoom, 1.0 + config.zoom)
        image, moved = move_boxes(image, boxes, flip_lr, flip_ud, angle, scale)
        image.set_shape((config.image_size, config.image_size, 3))
        target = tf.numpy_function(lambda rows: render_target(rows, map_size), [moved], tf.float32)
        target.set_shape((map_size, map_size, 3))
        return photometric(config, image), target

    tf.random.set_seed(seed)
    return apply


# --- decoding (NumPy) -----------------------------------------------------------------------------

def local_maxima(heat: np.ndarray) -> np.ndarray:
    """Pixels equal to the highest of their 3 x 3 neighbourhood (CenterNet's max-pool "NMS")."""
    padded = np.pad(heat, 1, constant_values=-np.inf)
    height, width = heat.shape
    highest = np.max([padded[dy:dy + height, dx:dx + width] for dy in range(3) for dx in range(3)], axis=0)
    return heat >= highest


def decode_centres(output: np.ndarray, threshold: float, frame_size: tuple[int, int],
                   k: int = MAX_PEAKS) -> list[FoundLesion]:
    """The lesions of one (M, M, 3) output, best first: peaks of the heat at or above ``threshold``
    (at most ``k``), each a box of the sizes read at the peak around the peak pixel's centre, in
    the frame's pixels (``frame_size`` is width, height); score = the peak's heat, area = the
    box's area in map pixels."""
    if output.ndim != 3 or output.shape[-1] != 3:
        raise ValueError(f"a centre output is (M, M, 3), found shape {output.shape}")
    heat = output[..., 0]
    ys, xs = np.nonzero(local_maxima(heat) & (heat >= threshold))
    order = np.argsort(-heat[ys, xs], kind="stable")[:k]
    height, width = heat.shape
    frame_w, frame_h = frame_size
    found = []
    for y, x in zip(ys[order], xs[order]):
        cx, cy = (x + 0.5) / width * frame_w, (y + 0.5) / height * frame_h
        w, h = float(output[y, x, 1]) * frame_w, float(output[y, x, 2]) * frame_h
        box = (max(0.0, cx - w / 2), max(0.0, cy - h / 2), min(float(frame_w), cx + w / 2),
               min(float(frame_h), cy + h / 2))
        area = max(1, round(w / frame_w * width * h / frame_h * height))
        found.append(FoundLesion(tuple(float(v) for v in box), float(heat[y, x]), area))
    return found
