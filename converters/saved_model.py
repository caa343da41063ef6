"""The SavedModel that ``TFLiteConverter`` reads, written once per Keras model.

``TFLiteConverter.from_keras_model`` writes a fresh SavedModel on every call, and that export
is most of a small model's conversion time; ``convert --quantize all`` converts one graph
three times (float32, float16, dynamic) and the INT8-ready graph once. ``SavedModels`` writes
each graph once, the way TensorFlow's Keras 3 path does (an ``ExportArchive`` whose ``serve``
endpoint calls the model with ``training=False``), so the converter gets the same graph and
writes the same tensors as ``from_keras_model`` (``tests/test_saved_model.py``); of the file's
bytes only the converter's note of the source format differs. Measured on a tiny run,
``convert --quantize all``: 123 s -> 73 s on a loaded 2-core machine.
"""

from __future__ import annotations

import contextlib
import functools
import io
import shutil
import tempfile
from pathlib import Path
from typing import Any

SIGNATURE = "serving_default"  # the signature TensorFlow's Keras path converts


class SavedModels:
    """A temporary folder of serving SavedModels, one per Keras model asked for; removed on exit."""

    def __init__(self) -> None:
        self._root = Path(tempfile.mkdtemp(prefix="artery-edge-savedmodel-"))
        self._written: list[tuple[Any, str]] = []  # (model, folder): the model is kept alive with it

    def __call__(self, model) -> str:
        for known, folder in self._written:
            if known is model:
                return folder
        folder = str(self._root / str(len(self._written)))
        write_serving(model, folder)
        self._written.append((model, folder))
        return folder

    def __enter__(self) -> "SavedModels":
        return self

    def __exit__(self, *exc) -> None:
        shutil.rmtree(self._root, ignore_errors=True)


def write_serving(model, folder: str) -> None:
    """``model`` called with ``training=False`` on its input tensors, as a SavedModel in ``folder``."""
    import keras
    import tensorflow as tf

    inputs = model.inputs
    signature = [tf.TensorSpec(x.shape, dtype=x.dtype, name=x.name) for x in inputs]
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serve", functools.partial(model.__call__, training=False),
                         signature if len(signature) == 1 else [signature])
    with contextlib.redirect_stdout(io.StringIO()):  # Keras prints the endpoint's signature
        archive.write_out(folder)
