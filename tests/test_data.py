"""trainer.scan, trainer.splits, trainer.split_files: scanning, the stratified seeded split, the manifest and bad datasets."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from artery_edge.trainer.samples import DataError, Sample
from artery_edge.trainer.scan import scan_dataset
from artery_edge.trainer.split_files import read_split, write_split
from artery_edge.trainer.splits import stratified_split


def write_images(folder: Path, count: int, size: int = 12) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        Image.fromarray(np.full((size, size, 3), i % 255, np.uint8)).save(folder / f"img{i:03d}.png")


def make_dataset(root: Path, counts: dict[str, int]) -> Path:
    for name, count in counts.items():
        write_images(root / name, count)
    return root


def test_classes_are_sorted_folders_and_non_images_are_ignored(tmp_path):
    root = make_dataset(tmp_path / "d", {"Unhealthy": 4, "Healthy": 5})
    (root / "Healthy" / "notes.txt").write_text("not an image")
    (root / "README.md").write_text("top-level file")
    scanned = scan_dataset(root)
    assert scanned.class_names == ["Healthy", "Unhealthy"]
    assert Counter(scanned.class_names[s.label] for s in scanned.samples) == {"Healthy": 5, "Unhealthy": 4}
    assert scanned.skipped == []


def test_corrupt_and_empty_images_are_skipped_and_named(tmp_path):
    root = make_dataset(tmp_path / "d", {"A": 4, "B": 4})
    (root / "A" / "zero.png").write_bytes(b"")
    (root / "B" / "broken.jpg").write_bytes(b"\xff\xd8garbage")
    scanned = scan_dataset(root)
    assert len(scanned.samples) == 8
    assert any("zero.png" in s for s in scanned.skipped) and any("broken.jpg" in s for s in scanned.skipped)


def test_split_is_stratified_deterministic_and_disjoint(tmp_path):
    root = make_dataset(tmp_path / "d", {"Healthy": 60, "Unhealthy": 40})
    samples = scan_dataset(root).samples
    first = stratified_split(samples, 0.15, 0.15, seed=7)
    again = stratified_split(list(reversed(samples)), 0.15, 0.15, seed=7)
    other = stratified_split(samples, 0.15, 0.15, seed=8)
    assert first == again
    assert first != other
    by_subset = {name: {s.path for s in first if s.subset == name} for name in ("train", "validation", "test")}
    assert sum(len(v) for v in by_subset.values()) == 100
    assert not (by_subset["train"] & by_subset["validation"] or by_subset["train"] & by_subset["test"]
                or by_subset["validation"] & by_subset["test"])
    counts = Counter((s.subset, s.label) for s in first)
    assert counts[("train", 0)] == 42 and counts[("validation", 0)] == 9 and counts[("test", 0)] == 9
    assert counts[("train", 1)] == 28 and counts[("validation", 1)] == 6 and counts[("test", 1)] == 6


def test_manifest_round_trips(tmp_path):
    root = make_dataset(tmp_path / "d", {"Healthy": 10, "Unhealthy": 10})
    scanned = scan_dataset(root)
    samples = stratified_split(scanned.samples)
    write_split(tmp_path / "split.csv", samples, root, scanned.class_names)
    assert read_split(tmp_path / "split.csv", root, scanned.class_names) == samples
    assert (tmp_path / "split.csv").read_text().splitlines()[0] == "file,class,subset,group"


@pytest.mark.parametrize(
    "counts, message",
    [({}, "no class folders"), ({"Healthy": 5}, "only one class"), ({"A": 2, "B": 5}, "at least 3")],
)
def test_unusable_datasets_fail_in_one_line(tmp_path, counts, message):
    root = make_dataset(tmp_path / "d", counts)
    root.mkdir(exist_ok=True)
    with pytest.raises(DataError, match=message):
        stratified_split(scan_dataset(root).samples)


def test_missing_directory(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        scan_dataset(tmp_path / "absent")


def test_sample_is_hashable_value():
    assert Sample(Path("a"), 0, "train") == Sample(Path("a"), 0, "train")


def test_a_class_folder_name_the_record_would_refuse_is_refused_before_work(tmp_path):
    """The model record's one label rule applies to class folders at scan time, not after training."""
    for name in ("Healthy", "Un\nhealthy"):
        (tmp_path / name).mkdir()
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / name / "a.png")
    with pytest.raises(DataError, match="printable"):
        scan_dataset(tmp_path)
