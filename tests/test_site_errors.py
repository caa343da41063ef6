"""studies/site_adaptation_errors.py: held-out scores map back to their files."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorflow", reason="the study reads folds with the trainer's modules (train extra)")

from PIL import Image  # noqa: E402

from artery_edge.trainer.scan import scan_dataset  # noqa: E402

STUDIES = Path(__file__).resolve().parents[1] / "studies"
SCRIPT = STUDIES / "site_adaptation_errors.py"


@pytest.fixture(scope="module")
def errors_module():
    sys.path.insert(0, str(STUDIES))
    spec = importlib.util.spec_from_file_location("site_adaptation_errors", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module
    sys.path.remove(str(STUDIES))


def write_site(root: Path, per_class: int = 10) -> None:
    rng = np.random.default_rng(0)
    for name in ("Healthy", "Unhealthy"):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 255, (8, 8), dtype=np.uint8)).save(root / name / f"train-{i:03d}.png")


def write_cv(module, samples, out: Path, hard: Path, repeats=(0, 1), folds: int = 5) -> None:
    """CV rows as site_adaptation_cv.py writes them: every patch right but ``hard``."""
    rows = []
    for repeat in repeats:
        for index, test in enumerate(module.stratified_folds(samples, folds, seed=repeat)):
            scores = [float(s.label == 1) if s.path != hard else float(s.label != 1) for s in test]
            rows.append({"model": "adapted (int8)", "repeat": repeat, "fold": index, "threshold": 0.5,
                         "labels": [s.label for s in test], "scores": scores})
    out.write_text(json.dumps({"rows": rows}))


def test_a_patch_wrong_in_every_repeat_is_named_and_drawn(errors_module, tmp_path):
    write_site(tmp_path / "site")
    samples = scan_dataset(tmp_path / "site").samples
    hard = samples[3].path
    write_cv(errors_module, samples, tmp_path / "cv.json", hard)
    seen, wrong = errors_module.wrong_counts(samples, [tmp_path / "cv.json"], "adapted (int8)", 5)
    assert set(seen.values()) == {2} and len(seen) == len(samples)
    assert {p for p in wrong if wrong[p]} == {hard} and wrong[hard] == 2

    result = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "cv.json"), "--data", str(tmp_path / "site"),
                             "--montage", str(tmp_path / "m.png")], capture_output=True, text=True, check=True)
    assert f"wrong in most repeats (1): Healthy/{hard.name} 2/2" in result.stdout
    with Image.open(tmp_path / "m.png") as image:
        assert image.size[0] > 0


def test_cv_rows_of_another_dataset_are_refused(errors_module, tmp_path):
    write_site(tmp_path / "site")
    write_site(tmp_path / "other", per_class=12)
    other = scan_dataset(tmp_path / "other").samples
    write_cv(errors_module, other, tmp_path / "cv.json", other[0].path)
    result = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "cv.json"), "--data", str(tmp_path / "site")],
                            capture_output=True, text=True)
    assert result.returncode != 0 and "error:" in result.stderr and "does not match" in result.stderr


@pytest.mark.parametrize("text", ["not json", '{"table": {}}', '{"rows": [{"model": "adapted (int8)"}]}'])
def test_a_file_that_is_no_cv_output_is_refused_in_one_line(tmp_path, text):
    write_site(tmp_path / "site")
    (tmp_path / "cv.json").write_text(text)
    result = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "cv.json"), "--data", str(tmp_path / "site")],
                            capture_output=True, text=True)
    assert result.returncode != 0 and result.stderr.strip().splitlines()[-1].startswith("error:")
    assert "Traceback" not in result.stderr
