"""``Classifier``: a .tflite file in, labelled float probabilities out, no TensorFlow.

Everything model-specific (labels, input size, resize method, input dtype, scale and
zero point) is read from the model file itself, never hard-coded here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from artery_edge.edge.decision import decide, positive_index
from artery_edge.edge.errors import ModelError, PredictionError
from artery_edge.edge.imaging import RESIZE_METHOD, RESIZE_METHODS, ImageSource, load_image, resize_rgb, rgb_image
from artery_edge.edge.metadata import ModelMetadata, metadata_from_bytes, read_model_bytes
from artery_edge.edge.model_record import check_labels
from artery_edge.edge.native_log import quiet_native_stderr
from artery_edge.edge.reference import release_warning
from artery_edge.edge.runtime import load_errors, load_interpreter


@dataclass
class Prediction:
    """One classified image: the decision, every class probability and how long it took."""

    label: str
    index: int
    probabilities: dict[str, float]
    positive_probability: float
    inference_ms: float
    total_ms: float
    size_note: Optional[str] = None  # the image is far outside the sizes the model was trained on


SIZE_MARGIN = 2.0  # an image more than this factor beyond the trained sizes gets a note


def size_note(size: tuple[int, int], trained: Optional[Sequence[int]]) -> Optional[str]:
    """A note for an image far outside the range of sizes (shorter..longer side, pixels) the model
    was trained on, e.g. a whole 512 px frame given to a classifier of 32-166 px patches: its
    answer is about a patch that is not there. None inside the range or when the range is unknown."""
    if not trained or len(trained) != 2:
        return None
    low, high = trained
    if max(size) <= SIZE_MARGIN * high and min(size) >= low / SIZE_MARGIN:
        return None
    return (f"a {size[0]}x{size[1]} image, far outside the {low}-{high} px images this model was trained on: "
            "its answer is about a patch; to find stenoses on a whole frame use `artery-edge scan`")


def quantize(values: np.ndarray, dtype: np.dtype, scale: float, zero_point: int) -> np.ndarray:
    """Float values to an integer tensor with the tensor's own scale and zero point."""
    info = np.iinfo(dtype)
    q = np.rint(values / scale + zero_point)
    return np.clip(q, info.min, info.max).astype(dtype)


def dequantize(values: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    return (values.astype(np.float32) - zero_point) * scale


class Classifier:
    """Load a .tflite image classifier once, then classify files, Pillow images or frames.

    Args:
        model_path: a ``.tflite`` file; its artery-edge metadata (labels, input size, resize
            method, temperature, threshold) is read from it when present.
        labels: class names, for a model without metadata (with metadata they must equal its own).
        threads: interpreter threads (None: the runtime's default).
        backend: ``ai_edge_litert``, ``tflite_runtime`` or ``tensorflow`` (None: the first
            installed, in that order).
    """

    def __init__(
        self,
        model_path: Path,
        labels: Optional[Sequence[str]] = None,
        threads: Optional[int] = None,
        backend: Optional[str] = None,
    ) -> None:
        self.model_path = Path(model_path)
        content = read_model_bytes(self.model_path)
        # set only for a modified packaged reference run anyway: every output must say so
        self.warning: Optional[str] = release_warning(self.model_path, content)
        self.metadata: Optional[ModelMetadata] = metadata_from_bytes(content, source=str(self.model_path))
        self.interpreter, self.backend = load_interpreter(self.model_path, content, threads, backend)
        self.threads = threads
        with load_errors(self.model_path):  # tensor details decode names: a damaged one raises there
            self._input, self._output = self._check_signature()
        with load_errors(self.model_path), quiet_native_stderr():  # LiteRT's "Created ... delegate" line
            self.interpreter.allocate_tensors()
        self._to_input = self._pixel_converter()
        self.input_size = int(self._input["shape"][1])
        self.resize_method = self.metadata.resize_method if self.metadata else RESIZE_METHOD
        self.labels = self._resolve_labels(labels)
        own_positive = self.metadata.positive_label if self.metadata else None
        self.positive_label = self.labels[positive_index(self.labels, own_positive)]
        # the operating point chosen on validation when the model was trained (None: arg-max)
        self.threshold: Optional[float] = self.metadata.threshold if self.metadata else None

    def _check_signature(self) -> tuple[dict, dict]:
        inputs = self.interpreter.get_input_details()
        outputs = self.interpreter.get_output_details()
        shape = tuple(int(s) for s in inputs[0]["shape"]) if len(inputs) == 1 else ()
        if len(inputs) != 1 or len(shape) != 4 or shape[0] != 1 or shape[3] != 3 or shape[1] != shape[2] or shape[1] < 1:
            found = ", ".join(str(tuple(int(d) for d in i["shape"])) for i in inputs) or "none"  # 1, not np.int32(1)
            raise ModelError(
                f"{self.model_path}: expected one square RGB image input (1, H, W, 3), found {found}"
            )
        if len(outputs) == 1 and len(outputs[0]["shape"]) == 4:
            raise ModelError(f"{self.model_path}: a whole-frame model (its output is a map): use `artery-edge scan`")
        if len(outputs) != 1 or len(outputs[0]["shape"]) != 2 or int(outputs[0]["shape"][0]) != 1:
            raise ModelError(f"{self.model_path}: expected one (1, n_classes) output")
        if self.metadata and self.metadata.input_size != shape[1]:
            raise ModelError(f"{self.model_path}: metadata says {self.metadata.input_size} px, the model takes {shape[1]}")
        if self.metadata and self.metadata.resize_method not in RESIZE_METHODS:
            raise ModelError(f"{self.model_path}: unknown resize method {self.metadata.resize_method!r} in metadata")
        return inputs[0], outputs[0]

    def _resolve_labels(self, labels: Optional[Sequence[str]]) -> list[str]:
        n_classes = int(self._output["shape"][1])
        own = list(self.metadata.labels) if self.metadata and self.metadata.labels else None
        if labels and own and list(labels) != own:
            raise ModelError(f"{self.model_path}: labels {','.join(labels)} differ from the model's own "
                             f"{','.join(own)}; leave --labels out for models with artery-edge metadata")
        if labels:
            check_labels(list(labels), 1, f"{self.model_path}: labels", ModelError)
            resolved = list(labels)
        elif own:
            resolved = own
        else:
            raise ModelError(
                f"{self.model_path}: no artery-edge metadata with class names; infer and benchmark take them as "
                f"--labels (e.g. --labels Healthy,Unhealthy for {n_classes} outputs), the other commands need a "
                f"model converted by artery-edge"
            )
        if len(resolved) != n_classes:
            raise ModelError(
                f"{self.model_path}: {len(resolved)} labels given but the model has {n_classes} outputs"
            )
        return resolved

    @property
    def input_dtype(self) -> np.dtype:
        return np.dtype(self._input["dtype"])

    @property
    def precision(self) -> str:
        if self.metadata:
            return self.metadata.precision
        return "int8" if self.input_dtype != np.float32 else "float32"

    def preprocess(self, source: ImageSource) -> np.ndarray:
        """uint8 (H, W, 3) pixels exactly as the trainer produced them."""
        return load_image(source, self.input_size, self.resize_method)

    def _pixel_converter(self) -> Callable[[np.ndarray], np.ndarray]:
        """uint8 pixels -> input tensor, from the input tensor's own dtype and quantization.

        Every pixel value 0..255 maps through a 256-entry table (exact for any scale and zero
        point); uint8 input with scale 1 / zero point 0 (our INT8 models) needs no work at all.
        """
        dtype = self.input_dtype
        scale, zero_point = self._input["quantization"]
        if dtype == np.float32 or scale == 0:
            return lambda pixels: pixels[np.newaxis].astype(dtype)
        table = quantize(np.arange(256, dtype=np.float32), dtype, scale, zero_point)
        if dtype == np.uint8 and np.array_equal(table, np.arange(256)):
            return lambda pixels: pixels[np.newaxis]
        return lambda pixels: np.take(table, pixels)[np.newaxis]

    def input_tensor(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 (H, W, 3) RGB pixels to the (1, H, W, 3) tensor the model takes."""
        return self._to_input(np.asarray(pixels, dtype=np.uint8))

    def invoke(self, tensor: np.ndarray) -> np.ndarray:
        """Run the model on a prepared input tensor and return float probabilities."""
        try:
            self.interpreter.set_tensor(self._input["index"], tensor)
            self.interpreter.invoke()
            raw = self.interpreter.get_tensor(self._output["index"])[0]
        except (ValueError, RuntimeError) as exc:  # a damaged model can fail only when it runs
            raise PredictionError(f"{self.model_path}: inference failed ({str(exc).strip().splitlines()[0]})") from None
        scale, zero_point = self._output["quantization"]
        if raw.dtype != np.float32:
            return dequantize(raw, scale, zero_point) if scale else raw.astype(np.float32)
        if not np.isfinite(raw).all():  # argmax([nan, nan]) would say class 0: never a finding
            raise PredictionError(f"{self.model_path}: the model's output is not finite ({raw.tolist()}); "
                                  "the model file may be corrupt")
        return raw

    def predict(self, source: ImageSource, threshold: Optional[float] = None) -> Prediction:
        """Classify one image. The positive class wins iff its probability >= ``threshold``
        (default: the model's stored operating point; arg-max for a model without one)."""
        start = time.perf_counter()
        image = rgb_image(source)
        tensor = self.input_tensor(resize_rgb(image, self.input_size, self.resize_method))
        invoke_start = time.perf_counter()
        probabilities = self.invoke(tensor)
        inference_ms = (time.perf_counter() - invoke_start) * 1000
        index = self.decide(probabilities, threshold)
        return Prediction(
            label=self.labels[index],
            index=index,
            probabilities={label: float(p) for label, p in zip(self.labels, probabilities)},
            positive_probability=float(probabilities[self.labels.index(self.positive_label)]),
            inference_ms=inference_ms,
            total_ms=(time.perf_counter() - start) * 1000,
            size_note=size_note(image.size, self.metadata.training.get("image_sizes") if self.metadata else None),
        )

    def decide(self, probabilities: np.ndarray, threshold: Optional[float] = None) -> int:
        """``edge.decision.decide`` at ``threshold`` (the model's own when None; arg-max when
        neither is set)."""
        threshold = self.threshold if threshold is None else threshold
        return int(decide(probabilities, threshold, self.labels.index(self.positive_label)))
