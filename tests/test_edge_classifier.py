"""edge.Classifier on tiny TFLite models built without TensorFlow: uint8, int8 and float input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from artery_edge.edge import Classifier, ModelError, ModelMetadata, read_metadata
from tests.tflite_builder import build_tiny_classifier, expected_probabilities

LABELS = ["Healthy", "Unhealthy"]


def meta(precision: str, size: int = 8) -> ModelMetadata:
    return ModelMetadata(labels=LABELS, input_size=size, precision=precision)


@pytest.fixture(params=["float32", "uint8", "int8"])
def model(request, tmp_path):
    return request.param, build_tiny_classifier(tmp_path / f"{request.param}.tflite", request.param, metadata=meta(request.param))


def test_probabilities_follow_the_tensor_quantization(model):
    dtype, path = model
    classifier = Classifier(path)
    assert classifier.input_dtype == np.dtype(dtype)
    pixels = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    prediction = classifier.predict(pixels)
    probabilities = np.array([prediction.probabilities[label] for label in LABELS])
    tolerance = 1e-5 if dtype == "float32" else 1 / 256 + 1e-6
    np.testing.assert_allclose(probabilities, expected_probabilities(pixels), atol=tolerance)
    assert prediction.label == LABELS[int(np.argmax(probabilities))]
    assert prediction.inference_ms > 0 and prediction.total_ms >= prediction.inference_ms


@pytest.mark.parametrize("mode", ["L", "P", "RGBA", "LA", "I;16", "RGB"])
def test_metadata_driven_preprocessing_for_every_mode(tmp_path, mode):
    path = build_tiny_classifier(tmp_path / "m.tflite", "uint8", size=8, metadata=meta("int8"))
    gray = np.tile(np.linspace(0, 255, 30).astype(np.uint8), (30, 1))
    image = Image.fromarray(gray.astype(np.uint16) * 257) if mode == "I;16" else Image.fromarray(gray, "L").convert(mode)
    image.save(tmp_path / "img.png")
    classifier = Classifier(path)
    pixels = classifier.preprocess(tmp_path / "img.png")
    expected = np.asarray(Image.fromarray(gray, "L").convert("RGB").resize((8, 8), Image.Resampling.BILINEAR))
    assert np.array_equal(pixels, expected)
    probabilities = classifier.predict(tmp_path / "img.png").probabilities
    np.testing.assert_allclose([probabilities[label] for label in LABELS], expected_probabilities(expected), atol=1 / 256 + 1e-6)


def test_threshold_decides_for_the_positive_class(tmp_path):
    classifier = Classifier(build_tiny_classifier(tmp_path / "m.tflite", metadata=meta("float32")))
    red = np.zeros((8, 8, 3), np.uint8)
    red[..., 0] = 200  # favours Healthy
    p = classifier.predict(red).positive_probability
    assert classifier.predict(red).label == "Healthy"
    assert classifier.predict(red, threshold=p - 1e-3).label == "Unhealthy"
    assert classifier.predict(red, threshold=min(1.0, p + 1e-3)).label == "Healthy"


def test_models_without_metadata_need_labels(tmp_path):
    path = build_tiny_classifier(tmp_path / "plain.tflite", "uint8")
    assert read_metadata(path) is None
    with pytest.raises(ModelError, match="--labels"):
        Classifier(path)
    classifier = Classifier(path, labels=["no", "yes"])
    assert classifier.labels == ["no", "yes"] and classifier.positive_label == "yes"
    with pytest.raises(ModelError, match="3 labels"):
        Classifier(path, labels=["a", "b", "c"])


@pytest.mark.parametrize(
    "kind, message",
    [("missing", "no such model"), ("empty", "not a TFLite model"), ("text", "not a TFLite model"),
     ("truncated", "cannot load"), ("vector", "square RGB image"), ("two_inputs", "square RGB image")],
)
def test_bad_model_files(tmp_path, kind, message):
    path = tmp_path / "m.tflite"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("definitely not a flatbuffer")
    elif kind == "truncated":
        full = build_tiny_classifier(tmp_path / "full.tflite", metadata=meta("float32")).read_bytes()
        path.write_bytes(full[: len(full) // 2])
    elif kind == "vector":
        build_tiny_classifier(path, input_shape=(1, 12), metadata=meta("float32"))
    elif kind == "two_inputs":
        build_tiny_classifier(path, n_inputs=2, metadata=meta("float32"))
    with pytest.raises(ModelError, match=message) as info:
        Classifier(path)
    assert "\n" not in str(info.value) and "np." not in str(info.value)  # (1, 12), not (np.int32(1), ...)
    if kind == "vector":
        assert str(info.value).endswith("found (1, 12)")


def test_edge_never_imports_tensorflow():
    import subprocess
    import sys

    code = "import sys, edge, edge.classifier, edge.stream, edge.bench, edge.batch; " \
           "print(any(m.split('.')[0] in ('tensorflow', 'keras') for m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


def test_metadata_round_trips_quantization_notes_and_reads_older_files():
    notes = {"weight_rounding": "calibrated", "layers": 53}
    written = ModelMetadata(labels=LABELS, input_size=8, precision="int8", quantization=notes)
    assert ModelMetadata.from_json(written.to_json()).quantization == notes
    older = json.loads(written.to_json())
    del older["quantization"]
    older["field_from_the_future"] = 1
    assert ModelMetadata.from_json(json.dumps(older)).quantization == {}
