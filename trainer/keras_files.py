"""Keras files that cannot be read: one :class:`ModelLoadError` line saying why.

Its own module so that both readers of Keras files import it without importing each other:
``trainer.runs`` (model files, through ``load_keras_model``) and ``trainer.model`` (a
MobileNetV2 weights file). TensorFlow-free: nothing here imports Keras.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

from artery_edge.edge.errors import ArteryEdgeError


class ModelLoadError(ArteryEdgeError):
    """A Keras model or weights file that cannot be loaded; the message is one line."""


@contextlib.contextmanager
def keras_errors(path: Path, what: str) -> Iterator[None]:
    """Turn whatever Keras raises while reading ``path`` (a model or a weights file) into one
    :class:`ModelLoadError` line saying why, when it can tell."""
    try:
        yield
    except ArteryEdgeError:
        raise
    except Exception as exc:  # noqa: BLE001 - Keras raises ValueError, OSError, BadZipFile, TypeError ...
        raise ModelLoadError(f"{path} cannot be loaded as a {what} ({describe_load_error(exc)})") from None


def describe_load_error(exc: Exception) -> str:
    """A short reason for a failed Keras load, in words a user can act on."""
    import zipfile

    text = str(exc)
    first = text.strip().splitlines()[0] if text.strip() else ""
    if "Lambda" in text and "safe_mode" in text:
        return "it holds a Lambda layer, arbitrary Python code that Keras' safe mode refuses to run"
    if isinstance(exc, zipfile.BadZipFile) or "zip" in text.lower():
        return "not a whole .keras archive: damaged, truncated or another format"
    if "mismatch" in text.lower() or "expected" in text.lower() and "weight" in text.lower():
        return f"made for another architecture: {first[:160]}"
    if "unable to synchronously open file" in text or "truncated" in text.lower():
        return "not a whole HDF5 file: damaged or truncated"
    return f"{type(exc).__name__}: {first[:160]}" if first else type(exc).__name__
