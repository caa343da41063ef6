"""What a .tflite says about itself, read without TensorFlow.

The converters store a JSON document in the model's standard ``metadata`` table under
the name :data:`METADATA_NAME`; TFLite interpreters ignore entries they do not know, so
the file still loads everywhere. The flatbuffer schema comes with ``ai_edge_litert``
(or ``tflite_runtime`` / TensorFlow's copy, whichever is installed).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from artery_edge.edge.errors import ModelError
from artery_edge.edge.model_record import ModelRecord

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
class ModelMetadata(ModelRecord):
    """The model's record (:class:`~artery_edge.edge.model_record.ModelRecord`: labels, input and its
    preprocessing, threshold, task...) and what belongs to this one file: its precision, how it was
    quantized, which release wrote it and when, and its own checksum."""

    precision: str = ""
    quantization: dict[str, Any] = field(default_factory=dict)
    artery_edge_version: str = ""
    created: str = ""
    file_sha256: str = ""  # of the whole file with this field zeroed: any flipped bit is refused at load
    format: int = METADATA_FORMAT

    def to_json(self) -> str:
        # source_model_sha256: the name runtimes before the record read the source's digest under
        return json.dumps({**self.to_dict(), "source_model_sha256": self.model_sha256}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "ModelMetadata":
        """Parse and type-check; a malformed document raises ValueError naming the field."""
        data = json.loads(text)
        if isinstance(data, dict) and "precision" not in data:
            raise ValueError("precision is missing")
        return cls.from_dict(data)

    @classmethod
    def of(cls, record: ModelRecord, **file_facts: Any) -> "ModelMetadata":
        """A variant's metadata: the model's record and this file's facts (precision, quantization...)."""
        return cls(**record.to_dict(), **file_facts)

    def check(self) -> "ModelMetadata":
        super().check()
        for name in ("precision", "file_sha256", "artery_edge_version", "created"):
            if not isinstance(getattr(self, name), str):
                raise ValueError(f"{name} must be a string, found {getattr(self, name)!r}")
        if not isinstance(self.quantization, dict):
            raise ValueError("quantization must be an object")
        return self


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
