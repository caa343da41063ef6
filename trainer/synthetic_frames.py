"""Synthetic whole frames: a small vessel tree on a noisy background, with or without narrowings,
each narrowing's outline and box written as COCO (``synth --frames``). NumPy and Pillow only.

For tests and the demo of ``train --task map`` and ``scan``: they show where a map model must
look (a narrowing of one vessel among several), not what a real angiogram looks like.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Optional

import numpy as np
from PIL import Image

from artery_edge.edge.annotations import COCO_FILE
from artery_edge.trainer.synthetic import vessel_path

VESSELS = (2, 4)  # vessels per frame, inclusive range
NEGATIVE_SHARE = 0.2  # frames without a narrowing


def _outline(curve: np.ndarray, radius: np.ndarray, lo: int, hi: int) -> list[tuple[float, float]]:
    """The vessel's two walls between curve points ``lo`` and ``hi``, as one closed polygon."""
    tangent = np.gradient(curve, axis=0)[lo:hi]
    normal = np.stack([-tangent[:, 1], tangent[:, 0]], axis=1)
    normal /= np.linalg.norm(normal, axis=1, keepdims=True) + 1e-9
    wall = radius[lo:hi, None] * 1.3
    left, right = curve[lo:hi] + normal * wall, curve[lo:hi] - normal * wall
    return [tuple(map(float, p)) for p in np.concatenate([left, right[::-1]])]


def render_frame(rng: np.random.Generator, size: int, lesions: int) -> tuple[np.ndarray, list[list[tuple[float, float]]]]:
    """One uint8 grey frame and the outline of each of its ``lesions`` narrowings."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    pixels = np.stack([xx.ravel(), yy.ravel()], axis=1)
    vessel = np.zeros(size * size)
    outlines = []
    count = max(int(rng.integers(VESSELS[0], VESSELS[1] + 1)), lesions)
    for number in range(count):
        curve = vessel_path(rng, size, 120, spread=0.25, reach=0.8, bend=0.2)
        radius = np.full(len(curve), rng.uniform(0.015, 0.03) * size)
        if number < lesions:
            at = int(rng.uniform(0.3, 0.7) * len(curve))
            width = rng.uniform(0.04, 0.07) * len(curve)
            outlines.append(_outline(curve, radius, max(0, int(at - 2 * width)), min(len(curve), int(at + 2 * width))))
            radius = radius * (1 - rng.uniform(0.6, 0.85) * np.exp(-0.5 * ((np.arange(len(curve)) - at) / width) ** 2))
        squared = (pixels ** 2).sum(1)[:, None] + (curve ** 2).sum(1)[None, :] - 2 * pixels @ curve.T
        nearest = squared.argmin(axis=1)
        distance = np.sqrt(np.maximum(squared[np.arange(len(pixels)), nearest], 0))
        vessel = np.maximum(vessel, np.sqrt(np.clip(1 - (distance / radius[nearest]) ** 2, 0, None)))
    background = rng.uniform(120, 170) + 30 * (xx * rng.uniform(-1, 1) + yy * rng.uniform(-1, 1)) / size
    image = background - rng.uniform(60, 90) * vessel.reshape(size, size) + rng.normal(0, rng.uniform(3, 8), (size, size))
    return np.clip(image, 0, 255).astype(np.uint8), outlines


def write_frames(out_dir: Path, count: int, size: int, seed: int,
                 progress: Optional[Callable[[int, int], None]] = None) -> int:
    """``count`` frames as ``images/N.png`` + one COCO ``annotations.json`` (category ``stenosis``)."""
    rng = np.random.default_rng(seed)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for number in range(1, count + 1):
        lesions = 0 if rng.random() < NEGATIVE_SHARE else int(rng.integers(1, 3))
        frame, outlines = render_frame(rng, size, lesions)
        Image.fromarray(frame, mode="L").save(out_dir / "images" / f"{number}.png")
        images.append({"id": number, "file_name": f"{number}.png", "width": size, "height": size})
        for outline in outlines:
            xs, ys = [p[0] for p in outline], [p[1] for p in outline]
            x0, y0 = max(0.0, min(xs)), max(0.0, min(ys))
            x1, y1 = min(float(size), max(xs)), min(float(size), max(ys))
            if x1 <= x0 or y1 <= y0:
                continue
            annotations.append({"id": len(annotations) + 1, "image_id": number, "category_id": 1,
                                "segmentation": [[round(v, 2) for p in outline for v in p]],
                                "bbox": [round(x0, 2), round(y0, 2), round(x1 - x0, 2), round(y1 - y0, 2)],
                                "area": round((x1 - x0) * (y1 - y0), 1), "iscrowd": 0})
        if progress:
            progress(number, count)
    (out_dir / COCO_FILE).write_text(json.dumps({
        "images": images, "annotations": annotations, "categories": [{"id": 1, "name": "stenosis"}]}))
    return count


def synthesize_frames(out_dir: Path, count: int, size: int = 128, seed: int = 0,
                      progress: Optional[Callable[[int, int], None]] = None) -> dict[str, int]:
    """``train/`` with ``count`` frames and ``val/`` with a quarter as many (at least 2), each a
    COCO folder; refuses a non-empty ``out_dir``, and the folder appears whole or not at all."""
    from artery_edge.trainer.synthetic import check_options, refuse_non_empty

    check_options(count, size, seed)
    refuse_non_empty(Path(out_dir))
    counts = {"train": count, "val": max(2, count // 4)}

    def fill(folder: Path) -> dict[str, int]:
        total = sum(counts.values())
        write_frames(folder / "train", counts["train"], size, seed,
                     progress and (lambda done, _: progress(done, total)))
        write_frames(folder / "val", counts["val"], size, seed + 1,
                     progress and (lambda done, _: progress(counts["train"] + done, total)))
        return counts

    from artery_edge.edge.atomic import fill_folder

    return fill_folder(Path(out_dir), fill)
