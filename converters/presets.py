"""How TensorFlow's TFLiteConverter produces each precision of the registry
(:mod:`edge.precisions`): one named factory per precision, each with its converter settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator, Optional

from edge.precisions import PRECISIONS, Precision

RepresentativeData = Callable[[], Iterator[list]]
Configure = Callable[[object, Optional[RepresentativeData]], None]


@dataclass(frozen=True)
class QuantizationPreset:
    precision: Precision
    settings: Configure  # sets a TFLiteConverter's options for this precision

    @property
    def name(self) -> str:
        return self.precision.name

    @property
    def needs_representative_data(self) -> bool:
        return self.precision.needs_calibration_images

    def configure(self, converter, representative: Optional[RepresentativeData] = None) -> None:
        if self.needs_representative_data and representative is None:
            raise ValueError(f"{self.name} needs a representative dataset")
        self.settings(converter, representative)


def _optimize(converter) -> None:
    import tensorflow as tf

    converter.optimizations = [tf.lite.Optimize.DEFAULT]  # alone: dynamic range (int8 weights)


def float32() -> QuantizationPreset:
    return QuantizationPreset(PRECISIONS["float32"], lambda converter, _: None)


def float16() -> QuantizationPreset:
    def settings(converter, _) -> None:
        import tensorflow as tf

        _optimize(converter)
        converter.target_spec.supported_types = [tf.float16]

    return QuantizationPreset(PRECISIONS["float16"], settings)


def dynamic() -> QuantizationPreset:
    return QuantizationPreset(PRECISIONS["dynamic"], lambda converter, _: _optimize(converter))


def int8() -> QuantizationPreset:
    def settings(converter, representative) -> None:
        import tensorflow as tf

        _optimize(converter)
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.uint8  # raw pixels: scale 1, zero point 0 (see converters.tflite)
        converter.inference_output_type = tf.uint8

    return QuantizationPreset(PRECISIONS["int8"], settings)


PRESETS: dict[str, Callable[[], QuantizationPreset]] = {
    factory().name: factory for factory in (float32, float16, dynamic, int8)}
