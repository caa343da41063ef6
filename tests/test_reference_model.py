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
from artery_edge.edge import Classifier
from artery_edge.edge.metadata import sha256_of_file
from artery_edge.edge.reference import REFERENCE_FILE, packaged_reference

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
    assert meta.model_sha256 == sha256_of_file(REFERENCE / "model.keras")
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


def test_the_code_carries_the_released_files_hash():
    """The anchor outside the file: what edge.reference checks against is the card's figure."""
    from artery_edge.edge.reference import REFERENCE_SHA256

    assert sha256_of_file(REFERENCE / REFERENCE_FILE) == REFERENCE_SHA256
    # and the released run's run.json records its model.keras, which adapt --from checks
    assert json.loads((REFERENCE / "run.json").read_text())["model_sha256"] == sha256_of_file(REFERENCE / "model.keras")


def reseal(data: bytes) -> bytes:
    """A tamperer's last step: the checksum inside the file recomputed, so the file checks itself."""
    from artery_edge.edge.metadata import digest_field, file_sha256

    recorded = re.search(rb'"file_sha256": "([0-9a-f]{64})"', data).group(1).decode()
    return data.replace(digest_field(recorded), digest_field(file_sha256(data, recorded)), 1)


def flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 1]) + data[at + 1:]


TAMPERINGS = {  # each a way issue 36 ran a modified packaged model silently
    "checksum key and threshold": lambda d: flip(d, d.index(b"file_sha256")).replace(
        b'"threshold": 0.4', b'"threshold": 0.9', 1),
    "a weight byte, resealed": lambda d: reseal(flip(d, len(d) // 2)),
}


@pytest.mark.parametrize("tamper", TAMPERINGS.values(), ids=TAMPERINGS.keys())
def test_a_modified_packaged_reference_is_refused_unless_run_anyway_and_then_says_so(tamper, tmp_path, monkeypatch):
    from artery_edge.edge import reference

    packaged = tmp_path / "edge" / "reference" / REFERENCE_FILE
    packaged.parent.mkdir(parents=True)
    packaged.write_bytes(tamper(packaged_reference().read_bytes()))
    monkeypatch.setattr(reference, "reference_location", lambda: packaged)
    image = tmp_path / "patch.png"
    Image.fromarray(np.full((40, 40), 90, np.uint8), "L").save(image)
    monkeypatch.delenv(reference.ALLOW_MODIFIED, raising=False)
    for args in (["infer", "--image", str(image)], ["infer", "--model", str(packaged), "--image", str(image)],
                 ["inspect"], ["benchmark", "--runs", "1", "--warmup", "0"]):
        result = CliRunner().invoke(app, args)
        errors = [line for line in result.output.splitlines() if line.startswith("error:")]
        assert result.exit_code == 1 and len(errors) == 1, (args, result.output)
        assert "is not the released reference model" in errors[0] and reference.ALLOW_MODIFIED in errors[0]

    monkeypatch.setenv(reference.ALLOW_MODIFIED, "1")
    result = CliRunner().invoke(app, ["infer", "--image", str(image), "--json"])
    assert result.exit_code == 0, result.output
    assert "not the released reference model" in json.loads(result.stdout)["warning"]
    assert "warning:" in result.stderr and "running it anyway" in result.stderr
