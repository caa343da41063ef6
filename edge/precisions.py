"""The one registry of TFLite precisions: their names and file names. Everything else (CLI,
converter, evaluation, benchmarks, studies) asks here; how each is converted, and which convert options
it takes, is ``converters.presets`` (keyed by these names; TensorFlow stays out of ``edge``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from artery_edge.edge.errors import ArteryEdgeError


@dataclass(frozen=True)
class Precision:
    name: str
    description: str
    needs_calibration_images: bool = False  # INT8 activations need ranges from real images

    @property
    def file_name(self) -> str:
        return f"model_{self.name}.tflite"

    def file(self, folder: Path) -> Path:
        return Path(folder) / self.file_name


PRECISIONS: dict[str, Precision] = {p.name: p for p in (
    Precision("float32", "no quantization: float32 weights and activations"),
    Precision("float16", "float16 weights, float32 input/output and compute"),
    Precision("dynamic", "dynamic range: int8 weights, float32 activations quantized on the fly, no calibration images"),
    Precision("int8", "full integer: int8 weights and activations, uint8 input and output",
              needs_calibration_images=True),
)}
ALL = "all"
FLOAT_REFERENCE = PRECISIONS["float32"]  # the unquantized twin every other precision is compared with
DEVICE_DEFAULT = PRECISIONS["int8"]  # what `convert` writes unless asked otherwise: the smallest, fastest file


def parse_precisions(spec: str) -> list[Precision]:
    """``int8``, ``float16,int8`` or ``all`` (in registry order); an unknown name is one error line."""
    names = list(PRECISIONS) if spec.strip() == ALL else [p.strip() for p in spec.split(",") if p.strip()]
    unknown = [n for n in names if n not in PRECISIONS]
    if unknown or not names:
        raise ArteryEdgeError(f"unknown precision {', '.join(unknown) or repr(spec)}; "
                              f"choose from {', '.join(PRECISIONS)} or {ALL}")
    return [PRECISIONS[n] for n in PRECISIONS if n in names]


def model_files(folder: Path) -> list[Path]:
    """The converted models present in ``folder``, in registry order."""
    return [p.file(folder) for p in PRECISIONS.values() if p.file(folder).is_file()]


def precision_of_file(path: Path) -> str:
    """``model_int8.tflite`` -> ``int8``; any other name: its stem."""
    stem = Path(path).stem
    return next((name for name, p in PRECISIONS.items() if p.file_name == Path(path).name), stem)
