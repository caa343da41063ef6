"""What a .tflite says about itself, read without TensorFlow.

The converters store a JSON document in the model's standard ``metadata`` table under
the name :data:`METADATA_NAME`; TFLite interpreters ignore entries they do not know, so
the file still loads everywhere. The flatbuffer schema comes with ``ai_edge_litert``
(or ``tflite_runtime`` / TensorFlow's copy, whichever is installed).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

from edge.errors import ModelError

METADATA_NAME = "artery_edge"
METADATA_FORMAT = 1
TFLITE_IDENTIFIER = b"TFL3"


def load_schema():
    """The generated TFLite flatbuffer schema module from whichever runtime is installed."""
    for name in (
        "ai_edge_litert.schema_py_generated",
        "tflite_runtime.schema_py_generated",
        "tensorflow.lite.python.schema_py_generated",
    ):
        try:
            return __import__(name, fromlist=["Model"])
        except ImportError:
            continue
    raise ModelError('no TFLite schema found: pip install "artery-edge[edge]"')


@dataclass
class ModelMetadata:
    """Everything the runtime needs to preprocess an image and name the outputs."""

    labels: list[str]
    input_size: int
    precision: str
    color_order: str = "RGB"
    input_range: tuple[float, float] = (0.0, 255.0)
    resize_method: str = "pillow-bilinear"
    positive_label: Optional[str] = None
    source_model_sha256: str = ""
    training: dict[str, Any] = field(default_factory=dict)
    quantization: dict[str, Any] = field(default_factory=dict)
    artery_edge_version: str = ""
    created: str = ""
    format: int = METADATA_FORMAT

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "ModelMetadata":
        data = json.loads(text)
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["input_range"] = tuple(known.get("input_range", (0.0, 255.0)))
        return cls(**known)


def read_model_bytes(path: Path) -> bytes:
    """The bytes of a .tflite file, checked to be a TFLite flatbuffer."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: no such model file")
    data = path.read_bytes()
    if len(data) < 8 or data[4:8] != TFLITE_IDENTIFIER:
        raise ModelError(f"{path}: not a TFLite model (no TFL3 identifier)")
    return data


def read_metadata(path: Path) -> Optional[ModelMetadata]:
    """The artery-edge metadata of a .tflite file, or None if it carries none."""
    data = read_model_bytes(path)
    return metadata_from_bytes(data, source=str(path))


def metadata_from_bytes(data: bytes, source: str = "model") -> Optional[ModelMetadata]:
    schema = load_schema()
    try:
        model = schema.Model.GetRootAs(data, 0)
        for i in range(model.MetadataLength()):
            entry = model.Metadata(i)
            if entry.Name() == METADATA_NAME.encode():
                raw = model.Buffers(entry.Buffer()).DataAsNumpy()
                return ModelMetadata.from_json(bytes(raw).decode("utf-8"))
    except Exception as exc:  # struct.error, IndexError...: the flatbuffer is cut or corrupt
        raise ModelError(f"{source}: cannot load TFLite model (corrupt or truncated: {type(exc).__name__})") from None
    return None
