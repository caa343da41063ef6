"""Whole-frame scores, NumPy only: ARCADE's per-image F1 and the lesion counts (found, false).

ARCADE's stenosis metric, as its organisers' ``evaluation/evaluate_stenosis.py`` computes it
(github.com/cmctec/ARCADE): per image, every predicted region gets the best F1 (Dice) of its
overlap with any true outline of that image, 0 when it touches none; the list is padded with
zeros up to the number of true outlines; the image's score is the mean of that list; the
metric is the mean over images. So a false region costs as a missed one does. The organisers
intersect polygons (shapely); here regions and outlines are pixel masks of the frame, which
differ from polygon areas by the pixels on the boundary.

A true lesion is *found* when a predicted box contains its centre; a predicted lesion that
contains no true centre is *false* (the rule of the FROC and recall figures). AP at IoU 0.5
(Danilov et al.'s measure) matches boxes greedily by score, as Pascal VOC does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
from PIL import Image

from artery_edge.edge.annotations import Frame, Lesion, draw_lesions
from artery_edge.edge.lesions import FoundLesion, decode_map, kept_map, label_regions


def arcade_f1(predicted: np.ndarray, truths: Sequence[np.ndarray]) -> Optional[float]:
    """One image's score: ``predicted`` a boolean frame-sized mask (its connected regions are
    the predicted outlines), ``truths`` one boolean mask per true outline. None for a frame
    with neither (the organisers' code has no value for it either)."""
    regions, count = label_regions(predicted)
    scores = []
    for number in range(1, count + 1):
        region = regions == number
        size = region.sum()
        best = 0.0
        for truth in truths:
            overlap = np.logical_and(region, truth).sum()
            if overlap:
                best = max(best, 2.0 * overlap / (size + truth.sum()))
        scores.append(best)
    scores += [0.0] * (len(truths) - len(scores))
    return float(np.mean(scores)) if scores else None


def contains(box: Sequence[float], point: tuple[float, float]) -> bool:
    return box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3]


@dataclass
class LesionCounts:
    """Lesions of one frame under the centre rule: true ones found, true ones in all, false marks."""

    found: int
    truths: int
    false: int


def count_lesions(found: Sequence[FoundLesion], truths: Sequence[Lesion]) -> LesionCounts:
    """Centre rule (see the module's docstring): a truth is found when any mark contains its centre."""
    hit = sum(any(contains(mark.box, truth.centre) for mark in found) for truth in truths)
    false = sum(not any(contains(mark.box, truth.centre) for truth in truths) for mark in found)
    return LesionCounts(hit, len(truths), false)


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def average_precision(frames: Sequence[tuple[Sequence[FoundLesion], Sequence[Lesion]]], at_iou: float = 0.5) -> float:
    """AP at an IoU over frames: marks of all frames ranked by score, each matched greedily to an
    unmatched truth of its frame (Pascal VOC's all-point interpolation)."""
    ranked = sorted(((mark.score, n, mark.box) for n, (marks, _) in enumerate(frames) for mark in marks),
                    key=lambda item: -item[0])
    total = sum(len(truths) for _, truths in frames)
    if total == 0:
        return float("nan")
    used = [np.zeros(len(truths), bool) for _, truths in frames]
    hits = []
    for _, n, box in ranked:
        truths = frames[n][1]
        overlaps = [iou(box, truth.box) if not used[n][k] else 0.0 for k, truth in enumerate(truths)]
        best = int(np.argmax(overlaps)) if overlaps else -1
        if best >= 0 and overlaps[best] >= at_iou:
            used[n][best] = True
            hits.append(1)
        else:
            hits.append(0)
    if not hits:
        return 0.0
    tp = np.cumsum(hits)
    recall = tp / total
    precision = tp / np.arange(1, len(hits) + 1)
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.diff(np.concatenate([[0.0], recall]))
    return float(np.sum(steps * envelope))


@dataclass
class FrameScores:
    """One model's per-frame figures at one threshold and minimum area."""

    f1: np.ndarray  # NaN where a frame has neither truth nor mark
    found: np.ndarray
    truths: np.ndarray
    false: np.ndarray
    marks: list[list[FoundLesion]]

    def summary(self) -> dict:
        return {"arcade_f1": float(np.nanmean(self.f1)) if np.isfinite(self.f1).any() else math.nan,
                "recall": float(self.found.sum() / self.truths.sum()) if self.truths.sum() else math.nan,
                "false_per_frame": float(self.false.mean()) if len(self.false) else math.nan,
                "frames": len(self.found), "lesions": int(self.truths.sum())}


def full_size(probability: np.ndarray, width: int, height: int) -> np.ndarray:
    """A model-resolution map bilinearly up-sampled to the frame (the outlines ARCADE scores)."""
    return np.asarray(Image.fromarray(probability.astype(np.float32), mode="F").resize(
        (width, height), Image.Resampling.BILINEAR))


def truth_outlines(frames: Sequence[Frame]) -> list[list[np.ndarray]]:
    """Each frame's true outlines as frame-sized masks: drawn once, for every threshold and model scored."""
    return [[draw_lesions([truth], (frame.width, frame.height), (frame.width, frame.height)) > 0
             for truth in frame.lesions] for frame in frames]


def score_maps(maps: Sequence[np.ndarray], frames: Sequence[Frame], threshold: float, min_area: int,
               with_f1: bool = True, outlines: Optional[Sequence[list[np.ndarray]]] = None) -> FrameScores:
    """Every frame scored as the device reports it: the lesions of :func:`edge.lesions.decode_map`,
    and for ARCADE's F1 their regions (those of at least ``min_area`` map pixels) up-sampled to the
    frame, against ``outlines`` (:func:`truth_outlines`, drawn here when not given)."""
    if with_f1 and outlines is None:
        outlines = truth_outlines(frames)
    f1, found, truths, false, marks = [], [], [], [], []
    for number, (probability, frame) in enumerate(zip(maps, frames)):
        size = (frame.width, frame.height)
        lesions = decode_map(probability, threshold, size, min_area)
        counts = count_lesions(lesions, frame.lesions)
        if with_f1:
            value = arcade_f1(full_size(kept_map(probability, threshold, min_area), *size) >= threshold,
                              outlines[number])
            f1.append(math.nan if value is None else value)
        found.append(counts.found)
        truths.append(counts.truths)
        false.append(counts.false)
        marks.append(lesions)
    return FrameScores(np.array(f1, float), np.array(found), np.array(truths), np.array(false), marks)
