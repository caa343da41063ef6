"""What a .tflite says about itself, read without TensorFlow.

The converters store a JSON document in the model's standard ``metadata`` table under
the name :data:`METADATA_NAME`; TFLite interpreters ignore entries they do not know, so
the file still loads everywhere. The flatbuffer schema comes with ``ai_edge_litert``
(or ``tflite_runtime`` / TensorFlow's copy, whichever is installed).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

from artery_edge.edge.errors import ModelError

METADATA_NAME = "artery_edge"
METADATA_FORMAT = 1
TFLITE_IDENTIFIER = b"TFL3"
TASKS = ("classify", "map")


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
    temperature: float = 1.0  # calibration: the graph outputs softmax(logits / temperature)
    threshold: Optional[float] = None  # positive iff p(positive_label) >= it (chosen on validation); None: arg-max
    file_sha256: str = ""  # of the whole file with this field zeroed: any flipped bit is refused at load
    parent: dict[str, Any] = field(default_factory=dict)  # adapted from: run name, model_sha256, data ({}: none)
    task: str = "classify"  # or "map": a whole-frame lesion map (edge.scanner), one label, a map threshold
    decoding: dict[str, Any] = field(default_factory=dict)  # map: min_area (map pixels) of a lesion
    format: int = METADATA_FORMAT

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "ModelMetadata":
        """Parse and type-check; a malformed document raises ValueError naming the field."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        for name in ("labels", "input_size", "precision"):
            if name not in known:
                raise ValueError(f"{name} is missing")
        known["input_range"] = tuple(known.get("input_range", (0.0, 255.0)))
        metadata = cls(**known)
        metadata.check()
        return metadata

    def check(self) -> None:
        labels = self.labels
        if not isinstance(labels, list) or not labels or not all(isinstance(x, str) and x for x in labels):
            raise ValueError(f"labels must be a list of non-empty strings, found {labels!r}")
        check_unique_labels(labels)
        if isinstance(self.input_size, bool) or not isinstance(self.input_size, int) or self.input_size < 1:
            raise ValueError(f"input_size must be a positive integer, found {self.input_size!r}")
        for name in ("precision", "color_order", "resize_method", "source_model_sha256", "file_sha256"):
            if not isinstance(getattr(self, name), str):
                raise ValueError(f"{name} must be a string, found {getattr(self, name)!r}")
        if self.positive_label is not None and self.positive_label not in labels:
            raise ValueError(f"positive_label {self.positive_label!r} is not one of the labels")
        if len(self.input_range) != 2 or not all(isinstance(v, (int, float)) for v in self.input_range):
            raise ValueError(f"input_range must be two numbers, found {list(self.input_range)!r}")
        if isinstance(self.temperature, bool) or not isinstance(self.temperature, (int, float)) or not self.temperature > 0:
            raise ValueError(f"temperature must be a positive number, found {self.temperature!r}")
        if self.threshold is not None and (isinstance(self.threshold, bool) or not isinstance(self.threshold, (int, float))
                                           or not 0 <= self.threshold <= 1):
            raise ValueError(f"threshold must be a number in [0, 1], found {self.threshold!r}")
        if self.threshold is not None and self.positive_label is None:
            raise ValueError("a threshold needs a positive_label")
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {', '.join(TASKS)}, found {self.task!r}")
        for name in ("training", "quantization", "parent", "decoding"):
            if not isinstance(getattr(self, name), dict):
                raise ValueError(f"{name} must be an object")


def check_unique_labels(labels) -> None:
    duplicates = sorted({label for label in labels if list(labels).count(label) > 1})
    if duplicates:
        raise ValueError(f"duplicate label(s) {', '.join(duplicates)}")


UNSET_DIGEST = "0" * 64


def digest_field(value: str) -> bytes:
    """How the checksum appears in the file: once, inside the JSON document (keys are sorted)."""
    return f'"file_sha256": "{value}"'.encode()


def sha256_of_file(path: Path) -> str:
    """SHA-256 of a whole file (model cards, the source model's digest in the metadata)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_sha256(data: bytes, recorded: str = UNSET_DIGEST) -> str:
    """SHA-256 of a model file whose recorded checksum is replaced by zeros (its value when hashed)."""
    return hashlib.sha256(data.replace(digest_field(recorded), digest_field(UNSET_DIGEST), 1)).hexdigest()


def read_model_bytes(path: Path) -> bytes:
    """The bytes of a .tflite file, checked to be a TFLite flatbuffer."""
    path = Path(path)
    if path.is_dir():
        raise ModelError(f"{path}: a folder, not a model file (give the .tflite file in it)")
    if not path.is_file():
        raise ModelError(f"{path}: no such model file")
    data = path.read_bytes()
    if len(data) < 8 or data[4:8] != TFLITE_IDENTIFIER:
        raise ModelError(f"{path}: not a TFLite model (no TFL3 identifier)")
    from artery_edge.edge.reference import release_warning

    release_warning(path, data)  # the packaged reference against the code's hash, whoever reads it
    return data


def read_metadata(path: Path) -> Optional[ModelMetadata]:
    """The artery-edge metadata of a .tflite file, or None if it carries none."""
    data = read_model_bytes(path)
    return metadata_from_bytes(data, source=str(path))


def metadata_from_bytes(data: bytes, source: str = "model") -> Optional[ModelMetadata]:
    """The metadata, after checking its types and the file's checksum it records. The check
    runs before any interpreter sees the bytes: LiteRT itself can crash on a damaged file."""
    schema = load_schema()
    try:
        model = schema.Model.GetRootAs(data, 0)
        raw = None
        for i in range(model.MetadataLength()):
            entry = model.Metadata(i)
            if entry.Name() == METADATA_NAME.encode():
                raw = bytes(model.Buffers(entry.Buffer()).DataAsNumpy())
                break
    except Exception as exc:  # struct.error, IndexError...: the flatbuffer is cut or corrupt
        raise ModelError(f"{source}: cannot load TFLite model (corrupt or truncated: {type(exc).__name__})") from None
    if raw is None:
        return None
    try:
        metadata = ModelMetadata.from_json(raw.decode("utf-8"))
    except (ValueError, TypeError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ModelError(f"{source}: malformed {METADATA_NAME} metadata ({str(exc).splitlines()[0]})") from None
    if metadata.file_sha256 and file_sha256(data, metadata.file_sha256) != metadata.file_sha256:
        raise ModelError(f"{source}: the file does not match the checksum in its metadata (corrupted)")
    return metadata
