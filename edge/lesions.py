"""A stenosis probability map -> lesions (box, score, area), in NumPy only.

The one decoder of a whole-frame model's output: ``scan``, the live page, the evaluation and
the threshold search all call :func:`decode_map`, so a lesion is the same thing everywhere.
A lesion is a connected region (8-neighbourhood) of map pixels at or above the threshold,
at least ``min_area`` map pixels large; its score is the region's highest probability and its
box is given in the frame's pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np

# The neighbours a foreground pixel is joined to (the other four follow by symmetry).
_FORWARD = ((0, 1), (1, -1), (1, 0), (1, 1))


@dataclass(frozen=True)
class FoundLesion:
    """A lesion the model marked: ``box`` ``[x0, y0, x1, y1]`` in the frame's pixels."""

    box: tuple[float, float, float, float]
    score: float
    area: int  # map pixels

    def as_dict(self) -> dict:
        return {"box": [round(v, 1) for v in self.box], "score": round(self.score, 4)}

    def moved(self, dx: float, dy: float) -> "FoundLesion":
        """The same lesion with its box shifted: found in a crop, placed in the frame it was cut from."""
        x0, y0, x1, y1 = self.box
        return replace(self, box=(x0 + dx, y0 + dy, x1 + dx, y1 + dy))


def boxes_text(lesions: Sequence[FoundLesion]) -> str:
    """Lesions on one line for people (``scan``'s table, ``infer``'s live lines): ``[x0, y0, x1, y1]
    score`` each, "; " between."""
    return "; ".join(f"[{', '.join(f'{v:.0f}' for v in lesion.box)}] {lesion.score:.2f}" for lesion in lesions)


def label_regions(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """Connected regions (8-neighbourhood) of a boolean mask: an int32 map (0 = background,
    1..n = regions, numbered in raster order of their first pixel) and n.

    Works on the foreground pixels only (a lesion map is mostly background): label propagation
    along neighbour pairs with pointer jumping, a few vectorised passes instead of a loop per pixel.
    """
    height, width = mask.shape
    flat = np.flatnonzero(mask)
    labels = np.zeros(mask.shape, np.int32)
    if flat.size == 0:
        return labels, 0
    index = np.full(height * width, -1, np.int64)
    index[flat] = np.arange(flat.size)
    rows, cols = np.divmod(flat, width)
    pairs = []
    for dy, dx in _FORWARD:
        r, c = rows + dy, cols + dx
        inside = (r < height) & (c >= 0) & (c < width)
        other = np.full(flat.size, -1, np.int64)
        other[inside] = index[r[inside] * width + c[inside]]
        keep = other >= 0
        pairs.append((np.flatnonzero(keep), other[keep]))
    a = np.concatenate([p[0] for p in pairs])
    b = np.concatenate([p[1] for p in pairs])
    root = np.arange(flat.size)
    while True:
        low = np.minimum(root[a], root[b])
        previous = root.copy()
        np.minimum.at(root, a, low)
        np.minimum.at(root, b, low)
        root = root[root]  # pointer jumping: each pixel points at its representative's representative
        if np.array_equal(root, previous):
            break
    _, numbered = np.unique(root, return_inverse=True)
    labels.flat[flat] = numbered.astype(np.int32) + 1
    return labels, int(numbered.max()) + 1


def decode_map(probabilities: np.ndarray, threshold: float, frame_size: tuple[int, int],
               min_area: int = 1) -> list[FoundLesion]:
    """The lesions of a 2-D probability map, best first, with boxes scaled to ``frame_size``
    (width, height): a map pixel covers ``width / map_width`` frame pixels across."""
    if probabilities.ndim != 2:
        raise ValueError(f"a lesion map is 2-D, found shape {probabilities.shape}")
    labels, count = label_regions(probabilities >= threshold)
    if count == 0:
        return []
    height, width = probabilities.shape
    sx, sy = frame_size[0] / width, frame_size[1] / height
    ys, xs = np.nonzero(labels)
    ids = labels[ys, xs] - 1
    area = np.bincount(ids, minlength=count)
    x0 = np.full(count, width)
    y0 = np.full(count, height)
    x1 = np.zeros(count, np.int64)
    y1 = np.zeros(count, np.int64)
    score = np.zeros(count)
    np.minimum.at(x0, ids, xs)
    np.minimum.at(y0, ids, ys)
    np.maximum.at(x1, ids, xs + 1)
    np.maximum.at(y1, ids, ys + 1)
    np.maximum.at(score, ids, probabilities[ys, xs])
    found = [FoundLesion((float(x0[i] * sx), float(y0[i] * sy), float(x1[i] * sx), float(y1[i] * sy)),
                         float(score[i]), int(area[i]))
             for i in range(count) if area[i] >= min_area]
    return sorted(found, key=lambda lesion: -lesion.score)


def kept_map(probabilities: np.ndarray, threshold: float, min_area: int) -> np.ndarray:
    """The map with every region below ``min_area`` (at ``threshold``) set to 0: what the lesions
    :func:`decode_map` reports cover, for drawing or scoring their outlines."""
    labels, count = label_regions(probabilities >= threshold)
    if count == 0:
        return np.zeros_like(probabilities)
    small = np.flatnonzero(np.bincount(labels.ravel(), minlength=count + 1)[1:] < min_area) + 1
    return np.where(np.isin(labels, small) | (labels == 0), 0, probabilities).astype(probabilities.dtype)
