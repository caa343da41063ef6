"""The operating point travels with the model: a threshold in the metadata decides by
default, --threshold overrides it; ``inspect`` shows it. TF-free (tiny hand-built models)."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from typer.testing import CliRunner

from artery_edge.cli import app
from artery_edge.edge import Classifier, ModelMetadata
from tests.tflite_builder import build_tiny_classifier

LABELS = ["Healthy", "Unhealthy"]
RED = np.zeros((8, 8, 3), np.uint8)
RED[..., 0] = 200  # favours Healthy: p(Unhealthy) ~ 3e-4


def model(tmp_path, threshold=None, dtype="uint8"):
    meta = ModelMetadata(labels=LABELS, input_size=8, precision="int8", positive_label="Unhealthy", threshold=threshold)
    return build_tiny_classifier(tmp_path / f"m-{threshold}.tflite", dtype, metadata=meta)


def test_the_stored_threshold_decides_and_an_explicit_one_overrides(tmp_path):
    p = Classifier(model(tmp_path, dtype="float32")).predict(RED).positive_probability
    assert p < 0.5
    low = Classifier(model(tmp_path, threshold=p / 2, dtype="float32"))
    assert low.threshold == pytest.approx(p / 2)
    assert low.predict(RED).label == "Unhealthy"  # the model's own operating point
    assert low.predict(RED, threshold=0.5).label == "Healthy"  # --threshold wins
    assert Classifier(model(tmp_path)).predict(RED).label == "Healthy"  # no threshold stored: arg-max


@pytest.mark.parametrize("bad", [1.5, -0.1, "0.3", True])
def test_a_damaged_threshold_in_the_metadata_is_refused(bad):
    meta = ModelMetadata(labels=LABELS, input_size=8, precision="int8", positive_label="Unhealthy")
    with pytest.raises(ValueError, match="threshold"):
        ModelMetadata.from_json(replace(meta, threshold=bad).to_json())


def test_infer_json_reports_the_threshold_it_used(tmp_path):
    from PIL import Image

    Image.fromarray(RED).save(tmp_path / "red.png")
    path = model(tmp_path, threshold=1e-4, dtype="float32")
    result = CliRunner().invoke(app, ["infer", "--model", str(path), "--image", str(tmp_path / "red.png"), "--json"])
    document = json.loads(result.stdout)
    assert document["threshold"] == pytest.approx(1e-4) and document["results"][0]["label"] == "Unhealthy"


def test_inspect_describes_a_model_without_tensorflow(tmp_path):
    path = model(tmp_path, threshold=0.3)
    result = CliRunner().invoke(app, ["inspect", str(path)])
    assert result.exit_code == 0, result.output
    assert "threshold 0.3000 on p(Unhealthy)" in result.stdout
    assert "input: " in result.stdout and "uint8 [1, 8, 8, 3], scale 1, zero point 0" in result.stdout
    assert "FULLY_CONNECTED 1" in result.stdout and "SOFTMAX 1" in result.stdout
    document = json.loads(CliRunner().invoke(app, ["inspect", str(path), "--json"]).stdout)
    assert document["ops"]["MEAN"] == 1 and document["metadata"]["threshold"] == 0.3
    assert document["inputs"][0]["dtype"] == "uint8" and document["outputs"][0]["shape"] == [1, 2]


def test_inspect_report_refuses_a_float_model_in_one_line(tmp_path):
    meta = ModelMetadata(labels=LABELS, input_size=8, precision="float32")
    path = build_tiny_classifier(tmp_path / "model_float32.tflite", "float32", metadata=meta)
    result = CliRunner().invoke(app, ["inspect", str(path), "--report", "--data", str(tmp_path)])
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "float32 model" in errors[0]
