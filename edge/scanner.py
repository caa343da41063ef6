"""``FrameScanner``: a whole-frame .tflite in, the frame's lesions out, no TensorFlow.

A whole-frame model (``train --task map``) gives a stenosis probability per pixel of its
input; :func:`edge.lesions.decode_map` turns the map into lesions at the threshold and minimum
area the model's metadata stores (chosen on validation when it was trained). The runtime is
the classifier's (same file checks, interpreter, input conversion, dequantization); only the
output's shape and its reading differ.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from artery_edge.edge.classifier import Classifier
from artery_edge.edge.errors import ModelError
from artery_edge.edge.imaging import ImageSource, resize_rgb, rgb_image
from artery_edge.edge.lesions import FoundLesion, decode_map


@dataclass
class FrameScan:
    """One scanned frame: its lesions (best first, boxes in the frame's pixels), the probability
    map at the model's resolution, the frame's size and how long it took. ``region`` is the
    part of the frame the map covers (x0, y0, x1, y1): a live view scans a camera frame's
    centre square, yet its boxes and overlay belong to the whole frame; None: all of it."""

    lesions: list[FoundLesion]
    probability_map: np.ndarray
    frame_size: tuple[int, int]
    inference_ms: float
    total_ms: float
    region: Optional[tuple[int, int, int, int]] = None

    @property
    def peak(self) -> float:
        """The highest stenosis probability anywhere in the frame."""
        return float(self.probability_map.max())


class FrameScanner(Classifier):
    """Load a whole-frame .tflite once, then scan files, Pillow images or camera frames.

    Args:
        model_path: a ``.tflite`` written by ``convert`` from a ``--task map`` run.
        threads: interpreter threads (None: the runtime's default).
        backend: as :class:`edge.classifier.Classifier`.
    """

    def __init__(self, model_path: Path, threads: Optional[int] = None, backend: Optional[str] = None) -> None:
        super().__init__(model_path, threads=threads, backend=backend)
        if self.metadata is None or self.metadata.task != "map":
            raise ModelError(f"{self.model_path}: not a whole-frame model (its metadata has no task 'map'); "
                             "`scan` takes a model converted from a `train --task map` run")
        self.min_area = int(self.metadata.decoding.get("min_area", 1))

    def _check_signature(self) -> tuple[dict, dict]:
        inputs = self.interpreter.get_input_details()
        outputs = self.interpreter.get_output_details()
        shape = tuple(int(s) for s in inputs[0]["shape"]) if len(inputs) == 1 else ()
        if len(inputs) != 1 or len(shape) != 4 or shape[0] != 1 or shape[3] != 3 or shape[1] != shape[2]:
            raise ModelError(f"{self.model_path}: expected one square RGB image input (1, H, W, 3)")
        out = tuple(int(s) for s in outputs[0]["shape"]) if len(outputs) == 1 else ()
        if len(out) == 2 or (self.metadata and self.metadata.task != "map"):
            raise ModelError(f"{self.model_path}: a patch classifier, not a whole-frame model: `scan` takes a model "
                             "converted from a `train --task map` run (use `infer` for this one)")
        if len(out) != 4 or out[0] != 1 or out[3] != 1:
            raise ModelError(f"{self.model_path}: expected one (1, H, W, 1) probability map output, found {out}")
        if self.metadata and self.metadata.input_size != shape[1]:
            raise ModelError(f"{self.model_path}: metadata says {self.metadata.input_size} px, the model takes {shape[1]}")
        return inputs[0], outputs[0]

    def _resolve_labels(self, labels) -> list[str]:
        return list(self.metadata.labels) if self.metadata else ["stenosis"]

    def scan(self, source: ImageSource, threshold: Optional[float] = None,
             region: Optional[tuple[int, int, int, int]] = None) -> FrameScan:
        """The lesions of one frame at ``threshold`` (default: the model's stored one); with
        ``region`` only that part of it is scanned, its boxes given in the whole frame's pixels."""
        start = time.perf_counter()
        image = rgb_image(source)
        part = image.crop(region) if region else image
        tensor = self.input_tensor(resize_rgb(part, self.input_size, self.resize_method))
        invoke_start = time.perf_counter()
        probability_map = self.invoke(tensor)[..., 0]
        inference_ms = (time.perf_counter() - invoke_start) * 1000
        at = self.threshold if threshold is None else threshold
        lesions = decode_map(probability_map, at, part.size, self.min_area)
        if region:
            lesions = [lesion.moved(region[0], region[1]) for lesion in lesions]
        return FrameScan(lesions, probability_map, image.size, inference_ms, (time.perf_counter() - start) * 1000,
                         region)
