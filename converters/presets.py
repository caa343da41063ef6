"""Quantization presets as named factories: each knows how to configure a TFLiteConverter."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator, Optional

RepresentativeData = Callable[[], Iterator[list]]


@dataclass(frozen=True)
class QuantizationPreset:
    name: str
    description: str
    needs_representative_data: bool = False

    def configure(self, converter, representative: Optional[RepresentativeData] = None) -> None:
        import tensorflow as tf

        if self.name == "float32":
            return
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if self.name == "float16":
            converter.target_spec.supported_types = [tf.float16]
            return
        if representative is None:
            raise ValueError("full-integer quantization needs a representative dataset")
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.uint8
        converter.inference_output_type = tf.uint8


def float32() -> QuantizationPreset:
    return QuantizationPreset("float32", "no quantization: float32 weights and activations")


def float16() -> QuantizationPreset:
    return QuantizationPreset("float16", "float16 weights, float32 input/output and compute")


def int8() -> QuantizationPreset:
    return QuantizationPreset(
        "int8", "full-integer: int8 weights and activations, uint8 input and output", needs_representative_data=True
    )


PRESETS: dict[str, Callable[[], QuantizationPreset]] = {"float32": float32, "float16": float16, "int8": int8}
