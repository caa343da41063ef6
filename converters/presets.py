"""How each precision of the registry (:mod:`edge.precisions`) is produced: one named factory
per precision, each owning the convert options it takes (with their defaults) and its
conversion step, as each format of Ultralytics' ``export_formats()`` does. ``convert`` asks
here and has no per-precision branch."""

from __future__ import annotations

import contextlib
import functools
import io
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping, Optional

import numpy as np

from artery_edge.converters.float16_keep import SMALL_WEIGHT_ELEMENTS, restore_small_weights
from artery_edge.edge.native_log import quiet_native_stderr
from artery_edge.edge.precisions import PRECISIONS, Precision

RepresentativeData = Callable[[], Iterator[list]]
Configure = Callable[[object, Optional[RepresentativeData]], None]
WEIGHT_ROUNDINGS = ("calibrated", "nearest")  # int8 kernels: chosen on the calibration images, or nearest


@dataclass(frozen=True)
class ExportJob:
    """What one precision's conversion step gets: the Keras serving graph, the calibration
    images (None unless a precision needs them), its own options resolved, the SavedModel of
    a Keras graph (written once per graph, see :mod:`converters.saved_model`) and the float32
    flatbuffer of the serving graph (converted at most once per ``convert``)."""

    model: Any
    images: Optional[np.ndarray]
    arguments: Mapping[str, Any]
    saved_model: Callable[[Any], str]
    float32: Callable[[], bytes]

    def flatbuffer(self, preset: "QuantizationPreset", model=None, representative=None) -> bytes:
        """``preset``'s conversion of ``model`` (default: the serving graph)."""
        return preset.convert(self.saved_model(self.model if model is None else model), representative)


Export = Callable[["QuantizationPreset", ExportJob], "tuple[bytes, dict]"]


@dataclass(frozen=True)
class QuantizationPreset:
    precision: Precision
    settings: Configure  # sets a TFLiteConverter's options for this precision
    export: Export = lambda preset, job: (job.flatbuffer(preset), {})  # flatbuffer, quantization notes
    arguments: Mapping[str, Any] = field(default_factory=dict)  # the convert options it takes -> default

    @property
    def name(self) -> str:
        return self.precision.name

    def configure(self, converter, representative: Optional[RepresentativeData] = None) -> None:
        if self.precision.needs_calibration_images and representative is None:
            raise ValueError(f"{self.name} needs a representative dataset")
        self.settings(converter, representative)

    def convert(self, saved_model: str, representative: Optional[RepresentativeData] = None) -> bytes:
        """The TFLiteConverter run with this preset's settings on a serving SavedModel."""
        import tensorflow as tf

        from artery_edge.converters.saved_model import SIGNATURE

        converter = tf.lite.TFLiteConverter.from_saved_model(saved_model, signature_keys=[SIGNATURE])
        self.configure(converter, representative)
        # TF prints the traced signature on stdout, its quantizer "fully_quantize: 0, ..." on file
        # descriptor 2 (past every log setting): kept off the terminal, shown if the conversion fails
        with contextlib.redirect_stdout(io.StringIO()), quiet_native_stderr(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Statistics for quantized inputs")  # we calibrate
            return converter.convert()

    def run(self, job: ExportJob) -> tuple[bytes, dict]:
        """This precision's flatbuffer and what was done beyond the converter's defaults."""
        return self.export(self, job)


def _optimize(converter) -> None:
    import tensorflow as tf

    converter.optimizations = [tf.lite.Optimize.DEFAULT]  # alone: dynamic range (int8 weights)


def float32() -> QuantizationPreset:
    return QuantizationPreset(PRECISIONS["float32"], lambda converter, _: None,
                              export=lambda preset, job: (job.float32(), {}))


def float16() -> QuantizationPreset:
    """float16 weights; ops whose weights have fewer than ``float16_keep_below`` elements keep
    them in float32 (see :mod:`converters.float16_keep`)."""
    def settings(converter, _) -> None:
        import tensorflow as tf

        _optimize(converter)
        converter.target_spec.supported_types = [tf.float16]

    def export(preset: QuantizationPreset, job: ExportJob) -> tuple[bytes, dict]:
        flatbuffer, keep_below = job.flatbuffer(preset), job.arguments["float16_keep_below"]
        if not keep_below:
            return flatbuffer, {}
        flatbuffer, kept = restore_small_weights(flatbuffer, job.float32(), keep_below)
        return flatbuffer, {"float32_weights_below_elements": keep_below, "float32_tensors": kept}

    return QuantizationPreset(PRECISIONS["float16"], settings, export,
                              arguments={"float16_keep_below": SMALL_WEIGHT_ELEMENTS})


def dynamic() -> QuantizationPreset:
    return QuantizationPreset(PRECISIONS["dynamic"], lambda converter, _: _optimize(converter))


def int8() -> QuantizationPreset:
    """Full integer with uint8 input and output; BatchNorm folded and weights rounded on the
    calibration images first (``weight_rounding``)."""
    def settings(converter, representative) -> None:
        import tensorflow as tf

        _optimize(converter)
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.uint8  # raw pixels: scale 1, zero point 0 (see representative_dataset)
        converter.inference_output_type = tf.uint8

    def export(preset: QuantizationPreset, job: ExportJob) -> tuple[bytes, dict]:
        model, notes = int8_ready_model(job.model, job.images, job.arguments["weight_rounding"])
        return job.flatbuffer(preset, model, representative_dataset(job.images)), notes

    return QuantizationPreset(PRECISIONS["int8"], settings, export, arguments={
        "calibration_images": 200, "calibration_data": None, "weight_rounding": WEIGHT_ROUNDINGS[0]})


def int8_ready_model(model, images: np.ndarray, rounding: str):
    """The model whose float weights the INT8 converter quantizes, and what was done to it.
    ``calibrated``: BatchNorm folded, then every kernel set to the int8 values that best
    reproduce its float outputs on the calibration images (see ``weight_rounding``)."""
    if rounding == "nearest":
        return model, {"weight_rounding": "nearest"}
    from artery_edge.converters.bn_folding import fold_batchnorm
    from artery_edge.converters.weight_rounding import round_model
    from artery_edge.edge.progress import progress_bar

    folded = fold_batchnorm(model)
    with progress_bar("int8 weight rounding, layers") as progress:
        layers = round_model(folded, images, progress=progress)
    reductions = [layer.reduction for layer in layers]
    return folded, {
        "weight_rounding": "calibrated",
        "layers": len(layers),
        "median_output_error_reduction": round(float(np.median(reductions)), 2),
    }


def representative_dataset(images: np.ndarray) -> RepresentativeData:
    """Calibration batches. One pixel of the first image is set to 0 and one to 255 so the
    input's calibrated range is exactly 0..255: uint8 input scale 1, zero point 0, every
    raw pixel exact (otherwise the brightest calibration pixel, e.g. 244, would clip)."""
    first = images[0].copy()
    first[0, 0], first[0, 1] = 0, 255

    def generate() -> Iterator[list]:
        for index, image in enumerate(images):
            yield [(first if index == 0 else image)[np.newaxis].astype(np.float32)]

    return generate


def float32_once(saved_model: Callable[[], str]) -> Callable[[], bytes]:
    """The float32 flatbuffer of a SavedModel, converted on first use only (float16 reuses it)."""
    return functools.cache(lambda: float32().convert(saved_model()))


PRESETS: dict[str, Callable[[], QuantizationPreset]] = {
    factory().name: factory for factory in (float32, float16, dynamic, int8)}
