"""Write artery-edge metadata into a .tflite flatbuffer (the reader lives in ``edge.metadata``).

The JSON document goes into the model's standard ``metadata`` table, which every TFLite
interpreter already knows how to skip, so the file stays loadable everywhere.
"""

from __future__ import annotations

from dataclasses import replace

import flatbuffers
import numpy as np

from artery_edge.edge.metadata import (
    METADATA_NAME, TFLITE_IDENTIFIER, UNSET_DIGEST, ModelMetadata, digest_field, file_sha256, load_schema,
)


def inline_external_buffers(model, model_bytes: bytes) -> None:
    """AI Edge Quantizer writes constant data after the flatbuffer, found by offset and size
    (the format for models over 2 GB). Re-packing would drop it: it moves into the buffers."""
    for buffer in model.buffers or []:
        if (buffer.offset or 0) > 1 and buffer.size:
            buffer.data = np.frombuffer(model_bytes, np.uint8, count=buffer.size, offset=buffer.offset)
            buffer.offset, buffer.size = 0, 0


def embed_metadata(model_bytes: bytes, metadata: ModelMetadata) -> bytes:
    """Return ``model_bytes`` with our metadata entry added (or replaced). The entry records
    the SHA-256 of the finished file (hashed with that field zeroed, then filled in place:
    same length, so nothing moves)."""
    schema = load_schema()
    model = schema.ModelT.InitFromPackedBuf(bytearray(model_bytes), 0)
    inline_external_buffers(model, model_bytes)
    metadata = replace(metadata, file_sha256=UNSET_DIGEST)
    payload = np.frombuffer(metadata.to_json().encode("utf-8"), dtype=np.uint8)
    ours = (METADATA_NAME, METADATA_NAME.encode())
    for replaced in (m for m in (model.metadata or []) if m.name in ours):
        model.buffers[replaced.buffer].data = None  # the earlier document goes, not only its entry
    entries = [m for m in (model.metadata or []) if m.name not in ours]
    buffer = schema.BufferT()
    buffer.data = payload
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = METADATA_NAME
    entry.buffer = len(model.buffers) - 1
    model.metadata = entries + [entry]
    builder = flatbuffers.Builder(len(model_bytes) + 4096)
    builder.Finish(model.Pack(builder), file_identifier=TFLITE_IDENTIFIER)
    unsealed = bytes(builder.Output())
    return unsealed.replace(digest_field(UNSET_DIGEST), digest_field(file_sha256(unsealed)), 1)
