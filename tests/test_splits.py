"""Splits without leakage (--group-pattern, --split-file) and class weights, TF-free where possible."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from artery_edge.trainer.config import ConfigError, TrainConfig
from artery_edge.trainer.samples import DataError, Sample
from artery_edge.trainer.scan import scan_dataset
from artery_edge.trainer.split_files import split_from_file
from artery_edge.trainer.splits import group_split


def patients(tmp_path: Path, n_patients: int = 12, per_patient: int = 5) -> Path:
    """Two classes of tiny PNGs named patient<k>_<i>.png, each patient in both classes."""
    rng = np.random.default_rng(0)
    for name in ("Healthy", "Unhealthy"):
        (tmp_path / name).mkdir(parents=True)
        for k in range(n_patients):
            for i in range(per_patient):
                Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(tmp_path / name / f"p{k:02d}_{i}.png")
    return tmp_path


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_no_group_appears_in_two_subsets(tmp_path, seed):
    samples = scan_dataset(patients(tmp_path)).samples
    split = group_split(samples, r"^(p\d+)_", 0.15, 0.15, seed)
    subsets_of = {}
    for s in split:
        subsets_of.setdefault(s.group, set()).add(s.subset)
    assert len(subsets_of) == 12 and all(len(v) == 1 for v in subsets_of.values())
    assert {s.subset for s in split} == {"train", "validation", "test"} and len(split) == len(samples)


@pytest.mark.parametrize("pattern, message", [
    ("(unclosed", "not a valid regular expression"), ("p\\d+", "needs a capture group"),
    ("^(zzz)", "matches no file name"), ("^(p0[0-1])_", "does not match"), ("^(p)", "finds 1 group"),
])
def test_bad_group_patterns_are_one_line(tmp_path, pattern, message):
    samples = scan_dataset(patients(tmp_path)).samples
    with pytest.raises(DataError, match=message.replace("(", r"\(")):
        group_split(samples, pattern, 0.15, 0.15, 0)


def test_a_bad_regex_is_refused_before_anything_runs():
    with pytest.raises(ConfigError, match="not a valid regular expression"):
        TrainConfig(group_pattern="(").validate()
    with pytest.raises(ConfigError, match="not both"):
        TrainConfig(group_pattern="(a)", split_file="x.csv").validate()


def write_split_file(path: Path, rows: list[tuple[str, str]], column: str = "file") -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([column, "subset"])
        writer.writerows(rows)
    return path


def test_a_split_file_assigns_exactly_its_files(tmp_path):
    root = patients(tmp_path / "data", n_patients=2, per_patient=3)
    rows = [(f"{c}/p00_{i}.png", "train") for c in ("Healthy", "Unhealthy") for i in range(3)]
    rows += [("Healthy/p01_0.png", "validation"), (str(root / "Unhealthy" / "p01_0.png"), "test")]  # absolute works
    split, unlisted = split_from_file(scan_dataset(root).samples, write_split_file(tmp_path / "s.csv", rows, "path"), root)
    assert len(split) == 8 and unlisted == 4
    assert [s.path.name for s in split if s.subset == "test"] == ["p01_0.png"]


@pytest.mark.parametrize("rows, message", [
    ([("Healthy/nope.png", "train")], "does not exist"),
    ([("Healthy/p00_0.png", "holdout")], "is not one of"),
    ([("Healthy/p00_0.png", "train")], "no file in validation, test"),
])
def test_bad_split_files_are_one_line(tmp_path, rows, message):
    root = patients(tmp_path / "data", n_patients=1, per_patient=1)
    with pytest.raises(DataError, match=message):
        split_from_file(scan_dataset(root).samples, write_split_file(tmp_path / "s.csv", rows), root)


def test_balanced_class_weights_are_inverse_frequency():
    pytest.importorskip("tensorflow", reason="TensorFlow not installed (train extra)")
    from artery_edge.trainer.training import class_weights

    samples = [Sample(Path(f"{i}.png"), 0) for i in range(30)] + [Sample(Path(f"u{i}.png"), 1) for i in range(10)]
    weights = class_weights(samples, 2, "balanced")
    assert weights == pytest.approx({0: 40 / 60, 1: 40 / 20}) and class_weights(samples, 2, "none") is None
    assert weights[0] * 30 == pytest.approx(weights[1] * 10)  # each class carries the same total weight
    with pytest.raises(ConfigError, match="class-weight"):
        TrainConfig(class_weight="inverse").validate()


def grouped_copy(synthetic_dir: Path, root: Path) -> Path:
    """The synthetic set with file names rec<k>_<n>.png: 10 recordings per class folder."""
    import shutil

    for folder in ("Healthy", "Unhealthy"):
        (root / folder).mkdir(parents=True)
        for n, path in enumerate(sorted((synthetic_dir / folder).glob("*.png"))):
            shutil.copy(path, root / folder / f"rec{n % 10}_{n:03d}.png")
    return root


def test_train_with_groups_then_with_that_split_file(synthetic_dir, tmp_path):
    pytest.importorskip("tensorflow", reason="TensorFlow not installed (train extra)")
    import json

    from typer.testing import CliRunner

    from artery_edge.cli import app
    from tests.conftest import tiny_weights

    runner = CliRunner()
    data = grouped_copy(synthetic_dir, tmp_path / "data")
    common = ["--image-size", "32", "--alpha", "0.35", "--weights", tiny_weights(), "--epochs", "1",
              "--fine-tune-epochs", "0", "--no-tensorboard", "--output-dir", str(tmp_path / "runs")]
    grouped = runner.invoke(app, ["train", str(data), "--group-pattern", r"^(rec\d+)_", "--class-weight", "balanced",
                                  "--run-name", "grouped", "--json", *common])
    assert grouped.exit_code == 0, grouped.output
    rows = list(csv.DictReader(open(tmp_path / "runs" / "grouped" / "split.csv")))
    subsets_of = {}
    for row in rows:
        subsets_of.setdefault(row["group"], set()).add(row["subset"])
    assert len(subsets_of) == 10 and all(len(v) == 1 for v in subsets_of.values())
    assert "class weights (balanced)" in grouped.output

    again = runner.invoke(app, ["train", str(data), "--split-file", str(tmp_path / "runs" / "grouped" / "split.csv"),
                                "--run-name", "from-file", "--json", *common])
    assert again.exit_code == 0, again.output
    same = {(r["file"], r["subset"]) for r in csv.DictReader(open(tmp_path / "runs" / "from-file" / "split.csv"))}
    assert same == {(r["file"], r["subset"]) for r in rows}
    assert json.loads(again.stdout)["n"] == sum(r["subset"] == "test" for r in rows)

    (tmp_path / "bad.csv").write_text("file,subset\nHealthy/gone.png,test\n")
    for extra, message in ((["--split-file", str(tmp_path / "bad.csv")], "gone.png does not exist"),
                           (["--group-pattern", "(oops"], "not a valid regular expression"),
                           (["--group-pattern", r"^(nothing\d)"], "matches no file name")):
        bad = runner.invoke(app, ["train", str(data), *extra, *common])
        errors = [line for line in bad.output.splitlines() if line.startswith("error:")]
        assert bad.exit_code == 1 and len(errors) == 1 and message in errors[0], bad.output
