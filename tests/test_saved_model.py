"""converters.saved_model: one SavedModel per graph gives the converter the same graph as
TensorFlow's own ``from_keras_model`` (which writes a SavedModel on every call)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorflow", reason="TensorFlow not installed (train extra)")

from artery_edge.converters.presets import PRESETS, representative_dataset  # noqa: E402
from artery_edge.converters.saved_model import SavedModels  # noqa: E402
from tests.keras_builder import tiny_mobilenet  # noqa: E402


def tensors_and_outputs(flatbuffer: bytes, image: np.ndarray) -> tuple[list, np.ndarray]:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=flatbuffer)
    interpreter.allocate_tensors()
    tensors = [(t["name"], tuple(t["shape"]), str(t["dtype"]), t["quantization"])
               for t in interpreter.get_tensor_details()]
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], image.astype(interpreter.get_input_details()[0]["dtype"]))
    interpreter.invoke()
    return tensors, interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


def test_a_shared_savedmodel_converts_to_the_graph_tensorflow_would(precision="dynamic"):  # int8 weights, no calibration
    import tensorflow as tf

    model = tiny_mobilenet()
    images = np.random.default_rng(0).uniform(0, 255, (8, 32, 32, 3)).astype(np.float32)
    preset = PRESETS[precision]()
    representative = representative_dataset(images) if preset.precision.needs_calibration_images else None
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    preset.configure(converter, representative)
    theirs = converter.convert()
    with SavedModels() as saved_model:
        ours = preset.convert(saved_model(model), representative)
    assert len(ours) == len(theirs)  # only the converter's note of the source format differs
    (their_tensors, their_output), (our_tensors, our_output) = (tensors_and_outputs(f, images[:1]) for f in (theirs, ours))
    assert our_tensors == their_tensors and np.array_equal(our_output, their_output)


def test_each_model_is_written_once_and_the_folder_goes_on_exit():
    first, second = tiny_mobilenet(0), tiny_mobilenet(1)
    with SavedModels() as saved_model:
        folder = saved_model(first)
        assert saved_model(first) == folder and saved_model(second) != folder
        assert (Path(folder) / "saved_model.pb").is_file()
    assert not Path(folder).parent.exists()
