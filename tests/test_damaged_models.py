"""Damaged or inconsistent .tflite files and run folders: one-line model or data errors, never a
wrong class. TF-free."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from artery_edge.cli import app
from artery_edge.edge import Classifier, ModelMetadata
from artery_edge.edge.errors import ModelError, PredictionError
from tests.bad_inputs import LABELS, model, save_png  # noqa: F401 (model: a fixture)
from tests.tflite_builder import build_tiny_classifier
from artery_edge.trainer.samples import DataError

runner = CliRunner()


# a NaN output is an error for that image, never "Healthy", and JSON stays JSON
def test_a_nan_output_is_an_error_not_a_class(tmp_path):
    path = build_tiny_classifier(tmp_path / "nan.tflite", "float32", bias=[np.nan, np.nan],
                                 metadata=ModelMetadata(labels=LABELS, input_size=8, precision="float32"))
    image = save_png(tmp_path / "x.png")
    with pytest.raises(PredictionError, match="not finite"):
        Classifier(path).predict(image)
    result = runner.invoke(app, ["infer", "--model", str(path), "--image", str(image), "--json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)  # strict JSON: no bare NaN
    assert report["failed"] == 1 and report["results"][0]["label"] is None


def test_a_flipped_bit_in_a_weight_is_refused_at_load(tmp_path):
    """The metadata records a checksum of the whole file: a corrupted file is refused before
    LiteRT sees it (LiteRT itself can crash on a damaged flatbuffer)."""
    from tests.tflite_builder import WEIGHTS

    path = build_tiny_classifier(tmp_path / "m.tflite", "float32",
                                 metadata=ModelMetadata(labels=LABELS, input_size=8, precision="float32"))
    data = bytearray(path.read_bytes())
    at = bytes(data).index(WEIGHTS.tobytes()) + 3  # the high byte of the first float32 weight
    data[at] ^= 0x40  # one exponent bit
    path.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="checksum"):
        Classifier(path)


# labels can no longer be silently wrong
def test_labels_that_differ_from_the_models_own_are_refused(model, tmp_path):
    with pytest.raises(ModelError, match="differ from the model's own"):
        Classifier(model, labels=["Unhealthy", "Healthy"])
    assert Classifier(model, labels=LABELS).labels == LABELS  # the same labels are fine


def test_duplicate_labels_are_refused(tmp_path):
    bare = build_tiny_classifier(tmp_path / "bare.tflite", "uint8")
    with pytest.raises(ModelError, match="duplicate label"):
        Classifier(bare, labels=["A", "A"])
    dup = build_tiny_classifier(tmp_path / "dup.tflite", "uint8",
                                metadata=ModelMetadata(labels=["A", "A"], input_size=8, precision="int8"))
    with pytest.raises(ModelError, match="duplicate label"):
        Classifier(dup)


# badly typed metadata is a one-line model error
@pytest.mark.parametrize("labels, size", [([0, 1], 8), (["A", ""], 8), (["A", "B"], "8"), ("AB", 8)])
def test_badly_typed_metadata_is_a_model_error(tmp_path, labels, size):
    path = build_tiny_classifier(tmp_path / "m.tflite", "uint8",
                                 metadata=ModelMetadata(labels=labels, input_size=size, precision="int8"))
    with pytest.raises(ModelError, match="malformed artery_edge metadata"):
        Classifier(path)


def test_a_damaged_run_file_is_a_data_error(tmp_path):
    from artery_edge.trainer.runs import load_run

    for name in ("run.json", "config.json", "split.csv", "model.keras"):
        (tmp_path / name).write_text("{}")
    (tmp_path / "run.json").write_text('{"class_names": "AB", "image_size": 8}')
    with pytest.raises(DataError, match="damaged run files"):
        load_run(tmp_path)
    (tmp_path / "run.json").write_text("{not json")
    with pytest.raises(DataError, match="damaged run files"):
        load_run(tmp_path)


def test_a_damaged_tensor_name_is_a_model_error(tmp_path):
    """Found by the long fuzz run: the interpreter decodes tensor names as UTF-8."""
    path = build_tiny_classifier(tmp_path / "m.tflite", "uint8")
    data = path.read_bytes().replace(b"image", b"\xff\xfemag")
    path.write_bytes(data)
    with pytest.raises(ModelError):
        Classifier(path, labels=LABELS)


def test_new_metadata_still_names_the_source_digest_as_older_runtimes_read_it(tmp_path):
    from artery_edge.edge.metadata import read_metadata

    path = build_tiny_classifier(tmp_path / "m.tflite", metadata=ModelMetadata(
        labels=["Healthy", "Unhealthy"], input_size=8, precision="int8", model_sha256="c" * 64))
    document = json.loads(ModelMetadata(labels=["A", "B"], input_size=8, precision="int8", model_sha256="c" * 64).to_json())
    assert document["source_model_sha256"] == document["model_sha256"] == "c" * 64
    assert read_metadata(path).model_sha256 == "c" * 64
