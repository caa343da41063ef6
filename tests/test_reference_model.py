"""The released reference model (models/reference/, packaged in edge): TF-free.

What a device user relies on: the file pip installs is the one the card describes (same
SHA-256 in the card, the repository and the metadata's record of its Keras source), it
loads and decides at the card's threshold, and on real P-ADSD patches it classifies as
the card's figures predict.
"""

from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from artery_edge.cli import app
from edge import Classifier
from edge.metadata import sha256_of_file
from edge.reference import REFERENCE_FILE, packaged_reference

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "models" / "reference"
SHARED_DATA = ROOT.parent / "shared" / "data"
PER_CLASS = 60  # real patches per class classified in the test


@pytest.fixture(scope="module")
def run() -> dict:
    return json.loads((REFERENCE / "run.json").read_text())


@pytest.fixture(scope="module")
def card_figures() -> dict:
    """The INT8 figures the card reports, from the evaluation it was written from."""
    report = json.loads((REFERENCE / "evaluation" / "metrics.json").read_text())
    return report["models"]["int8"]["metrics"]


def test_packaged_file_is_the_one_the_card_and_the_repository_name():
    packaged = packaged_reference()
    digest = sha256_of_file(packaged)
    assert sha256_of_file(REFERENCE / REFERENCE_FILE) == digest
    card = (REFERENCE / "MODEL_CARD.md").read_text()
    stated = re.findall(rf"`{re.escape(REFERENCE_FILE)}` \| `([0-9a-f]{{64}})`", card)
    assert stated == [digest], "MODEL_CARD.md must state the packaged file's SHA-256 once"


def test_metadata_matches_the_run_and_its_keras_model(run):
    classifier = Classifier(packaged_reference())  # checks the file's own recorded digest first
    meta = classifier.metadata
    assert meta.source_model_sha256 == sha256_of_file(REFERENCE / "model.keras")
    assert meta.labels == run["class_names"] and meta.input_size == run["image_size"]
    assert meta.precision == "int8" and classifier.positive_label == "Unhealthy"
    assert meta.threshold == pytest.approx(run["threshold"]) and meta.temperature == pytest.approx(run["temperature"])


def test_infer_without_model_uses_the_packaged_reference(tmp_path):
    image = tmp_path / "patch.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 40), dtype=np.uint8), "L").save(image)
    result = CliRunner().invoke(app, ["infer", "--image", str(image), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert Path(report["model"]) == packaged_reference()
    assert report["results"][0]["label"] in ("Healthy", "Unhealthy")
    assert "packaged reference model" in result.stderr


def held_out_sample() -> dict[str, list[Path]]:
    """Every k-th held-out (`validation-*`) patch of each class listed in the run's split, in
    file order: a fixed sample, not chosen by looking at the model's answers."""
    with open(REFERENCE / "split.csv", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["subset"] == "test"]
    sample = {}
    for name in ("Healthy", "Unhealthy"):
        files = sorted(r["file"] for r in rows if r["class"] == name)
        step = max(1, len(files) // PER_CLASS)
        sample[name] = [SHARED_DATA / f for f in files[::step][:PER_CLASS]]
    return sample


@pytest.mark.shared
@pytest.mark.skipif(not (SHARED_DATA / "stenosis-patches").is_dir(),
                    reason="../shared/data (P-ADSD patches) is not beside this checkout")
def test_classifies_real_held_out_patches_as_the_card_predicts(card_figures):
    """Sensitivity and specificity on a fixed sample of 60 + 60 held-out patches lie within
    four binomial standard errors of the card's figures on all 6,014 (a broken file or a
    swapped label lands near 0.5 or below, far outside)."""
    classifier = Classifier(packaged_reference())
    sample = held_out_sample()
    for name, metric in (("Unhealthy", "sensitivity"), ("Healthy", "specificity")):
        correct = np.mean([classifier.predict(path).label == name for path in sample[name]])
        expected = card_figures[metric]
        band = 4 * math.sqrt(expected * (1 - expected) / len(sample[name])) + 1 / len(sample[name])
        assert abs(correct - expected) <= band, (metric, correct, expected)
