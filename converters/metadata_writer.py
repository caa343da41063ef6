"""Write artery-edge metadata into a .tflite flatbuffer (the reader lives in ``edge.metadata``).

The JSON document goes into the model's standard ``metadata`` table, which every TFLite
interpreter already knows how to skip, so the file stays loadable everywhere.
"""

from __future__ import annotations

from dataclasses import replace

import flatbuffers
import numpy as np

from edge.metadata import METADATA_NAME, TFLITE_IDENTIFIER, ModelMetadata, load_schema, weights_sha256


def embed_metadata(model_bytes: bytes, metadata: ModelMetadata) -> bytes:
    """Return ``model_bytes`` with our metadata entry added (or replaced), recording the
    checksum of every buffer already there (the reader leaves out only this entry's buffer)."""
    schema = load_schema()
    model = schema.ModelT.InitFromPackedBuf(bytearray(model_bytes), 0)
    metadata = replace(metadata, weights_sha256=weights_sha256(model_bytes))
    payload = np.frombuffer(metadata.to_json().encode("utf-8"), dtype=np.uint8)
    entries = [m for m in (model.metadata or []) if m.name not in (METADATA_NAME, METADATA_NAME.encode())]
    buffer = schema.BufferT()
    buffer.data = payload
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = METADATA_NAME
    entry.buffer = len(model.buffers) - 1
    model.metadata = entries + [entry]
    builder = flatbuffers.Builder(len(model_bytes) + 4096)
    builder.Finish(model.Pack(builder), file_identifier=TFLITE_IDENTIFIER)
    return bytes(builder.Output())
