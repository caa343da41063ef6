"""The CenterNet-style whole-frame head (trainer.center_head): targets, decoding, loss, model, zoom."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorflow", reason="TensorFlow not installed (train extra)")

from artery_edge.edge.annotations import Frame, Lesion  # noqa: E402
from artery_edge.trainer.center_head import (  # noqa: E402
    MAX_PEAKS, STRIDE, build_center_model, centre_loss, decode_centres, frame_boxes, frame_target,
    move_boxes, padded_boxes, render_target)
from artery_edge.trainer.config import TrainConfig  # noqa: E402

SIZE = 256  # model input: a 64 x 64 output
MAP = SIZE // STRIDE
FRAME = Frame(Path("frame.png"), 512, 400, (
    Lesion((100.0, 80.0, 160.0, 120.0)),  # centre (130, 100), 60 x 40
    Lesion((300.0, 250.0, 320.0, 290.0)),  # centre (310, 270), 20 x 40: a small one (radius 0)
    Lesion((20.0, 300.0, 120.0, 390.0)),  # centre (70, 345), 100 x 90
))


def centre_pixel(lesion: Lesion, frame: Frame = FRAME) -> tuple[int, int]:
    cx, cy = lesion.centre
    return int(cx / frame.width * MAP), int(cy / frame.height * MAP)


def test_target_peaks_at_each_box_centre_with_its_size():
    target = frame_target(FRAME, SIZE)
    assert target.shape == (MAP, MAP, 3) and target.dtype == np.float32
    heat = target[..., 0]
    assert np.count_nonzero(heat == 1.0) == len(FRAME.lesions)  # exactly one positive per lesion
    for lesion in FRAME.lesions:
        x, y = centre_pixel(lesion)
        x0, y0, x1, y1 = lesion.box
        assert heat[y, x] == 1.0
        assert target[y, x, 1] == pytest.approx((x1 - x0) / FRAME.width)
        assert target[y, x, 2] == pytest.approx((y1 - y0) / FRAME.height)
    big_x, big_y = centre_pixel(FRAME.lesions[2])
    assert 0 < heat[big_y, big_x + 1] < 1 and heat[big_y, big_x + 1] > heat[big_y, big_x + 3]  # a Gaussian, falling off
    assert heat.sum() > len(FRAME.lesions)


def test_decoding_a_rendered_target_recovers_the_boxes():
    found = decode_centres(frame_target(FRAME, SIZE), 0.5, (FRAME.width, FRAME.height))
    assert len(found) == len(FRAME.lesions)
    pixel = FRAME.width / MAP, FRAME.height / MAP  # frame pixels per map pixel across and down
    for lesion in FRAME.lesions:
        match = min(found, key=lambda mark: abs(mark.box[0] - lesion.box[0]) + abs(mark.box[1] - lesion.box[1]))
        for got, want, step in zip(match.box, lesion.box, pixel * 2):
            assert abs(got - want) <= step, (match.box, lesion.box)
        assert match.score == pytest.approx(1.0)
    assert decode_centres(frame_target(FRAME, SIZE), 1.01, (FRAME.width, FRAME.height)) == []


def test_decoding_keeps_the_k_best_local_maxima_only():
    rng = np.random.default_rng(0)
    output = np.zeros((MAP, MAP, 3), np.float32)
    output[..., 1:] = 0.1
    spots = rng.choice(MAP * MAP, 40, replace=False)
    output[..., 0].flat[spots] = rng.uniform(0.3, 0.9, 40)
    found = decode_centres(output, 0.2, (SIZE, SIZE))
    assert len(found) <= MAX_PEAKS and [m.score for m in found] == sorted((m.score for m in found), reverse=True)
    plateau = np.zeros((MAP, MAP, 3), np.float32)
    plateau[10, 10, 0], plateau[10, 11, 0] = 0.9, 0.5  # the 0.5 is beside a higher peak: not a maximum
    assert [m.score for m in decode_centres(plateau, 0.2, (SIZE, SIZE))] == [pytest.approx(0.9)]


def test_loss_is_lower_for_the_target_than_for_a_shifted_map():
    target = np.stack([frame_target(FRAME, SIZE), frame_target(Frame(Path("empty.png"), 512, 400), SIZE)])
    exact = np.clip(target, 0.0, 1.0)
    shifted = np.roll(exact, 3, axis=2)  # peaks three map pixels off
    wrong_sizes = exact.copy()
    wrong_sizes[..., 1:] = np.clip(wrong_sizes[..., 1:] + 0.1, 0, 1)
    loss = {name: float(centre_loss(target, pred)) for name, pred in
            (("exact", exact), ("shifted", shifted), ("sizes", wrong_sizes), ("flat", np.full_like(exact, 0.1)))}
    # the exact map still pays a little: a Gaussian's flank is a (down-weighted) negative
    assert loss["exact"] < 0.1 < 10 * loss["exact"] < loss["flat"] < loss["shifted"]
    assert float(centre_loss(target, np.roll(exact, 1, axis=1))) > 10 * loss["exact"]  # one map pixel off
    assert loss["sizes"] - loss["exact"] == pytest.approx(5 * 0.1, rel=1e-3)  # L1 x 5 at the centres only


def test_tiny_model_builds_with_the_right_output():
    config = TrainConfig(image_size=64, alpha=0.35, weights="none")
    model = build_center_model(config)
    assert model.output_shape == (None, 16, 16, 3)
    output = np.asarray(model(np.zeros((2, 64, 64, 3), np.float32), training=False))
    assert output.shape == (2, 16, 16, 3) and output.dtype == np.float32
    assert np.all((output >= 0) & (output <= 1))
    bias = model.get_layer("centre_logits").bias.numpy()
    assert bias[0] == pytest.approx(-2.19)


def bright_square(size: int, box: tuple[float, float, float, float]) -> np.ndarray:
    image = np.zeros((size, size, 3), np.float32)
    x0, y0, x1, y1 = (round(v * size) for v in box)
    image[y0:y1, x0:x1] = 255.0
    return image


@pytest.mark.parametrize("flip_lr, flip_ud, angle, scale", [
    (False, False, 0.0, 1.3), (False, False, 0.0, 0.8), (True, False, 0.25, 1.15), (False, True, -0.25, 0.9)])
def test_geometry_moves_frame_and_boxes_alike_and_zoom_scales_the_sizes(flip_lr, flip_ud, angle, scale):
    import tensorflow as tf

    size = 128
    box = (0.3, 0.55, 0.45, 0.7)  # fractions of the frame: centre (0.375, 0.625), 0.15 square
    frame = Frame(Path("f.png"), size, size, (Lesion(tuple(v * size for v in box)),))
    rows = padded_boxes([frame])[0]
    image, moved = move_boxes(tf.constant(bright_square(size, box)), tf.constant(rows), tf.constant(flip_lr),
                              tf.constant(flip_ud), tf.constant(angle), tf.constant(scale))
    moved = moved.numpy()
    assert moved[0, 2:] == pytest.approx(frame_boxes(frame)[0, 2:] * scale, rel=1e-5)  # the sizes follow the zoom
    assert np.all(moved[1:, 2:] == 0)  # padding stays padding
    grey = image.numpy()[..., 0]
    ys, xs = np.nonzero(grey > 127)
    assert ((xs + 0.5).mean() / size, (ys + 0.5).mean() / size) == pytest.approx(tuple(moved[0, :2]), abs=1.5 / size)
    assert len(xs) / size ** 2 == pytest.approx(0.15 ** 2 * scale ** 2, rel=0.15)  # the square was zoomed too
    target = render_target(moved, size // STRIDE)
    y, x = np.unravel_index(np.argmax(target[..., 0]), target.shape[:2])
    assert target[y, x, 1] == pytest.approx(0.15 * scale, rel=1e-5)
