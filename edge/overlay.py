"""A scanned frame drawn for people: the frame, the stenosis map over it, each lesion's box and score.

One drawing for ``scan --out``, the live page and the video window, Pillow only.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from artery_edge.edge.scanner import FrameScan

MAP_COLOUR = np.array([255, 60, 0], np.float32)
BOX_COLOUR = (255, 220, 0)
MAP_FLOOR = 0.2  # probabilities below this are not tinted: the frame stays readable


def draw_scan(frame: Image.Image, scan: FrameScan) -> Image.Image:
    """``frame`` (RGB, any size) with the map tinted over the part it covers (``scan.region``, else
    all of it) and a box + score per lesion."""
    frame = frame.convert("RGB")
    left, top, right, bottom = scan.region or (0, 0, *frame.size)
    probability = Image.fromarray(scan.probability_map.astype(np.float32), mode="F").resize(
        (right - left, bottom - top), Image.Resampling.BILINEAR)
    alpha = np.zeros((frame.size[1], frame.size[0], 1), np.float32)
    alpha[top:bottom, left:right, 0] = np.clip((np.asarray(probability) - MAP_FLOOR) / (1 - MAP_FLOOR), 0, 1) * 0.6
    pixels = np.asarray(frame, np.float32)
    tinted = Image.fromarray(np.rint(pixels * (1 - alpha) + MAP_COLOUR * alpha).astype(np.uint8))
    draw = ImageDraw.Draw(tinted)
    width = max(1, round(max(frame.size) / 256))
    for lesion in scan.lesions:
        x0, y0, x1, y1 = lesion.box
        draw.rectangle([x0, y0, x1 - 1, y1 - 1], outline=BOX_COLOUR, width=width)
        draw.text((x0 + 2, max(0, y0 - 12)), f"{lesion.score:.2f}", fill=BOX_COLOUR)
    return tinted
