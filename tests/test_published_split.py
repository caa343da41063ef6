"""Several dataset folders merged class by class, a published split kept by file name
(--split-pattern), and the operating point chosen on validation. TF-free."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from artery_edge.trainer.config import ConfigError, TrainConfig, parse_operating_point
from artery_edge.trainer.operating_point import choose_threshold
from artery_edge.trainer.samples import DataError
from artery_edge.trainer.scan import scan_dataset
from artery_edge.trainer.split_files import read_split, write_split
from artery_edge.trainer.splits import pattern_split


def folder(root: Path, counts: dict[str, dict[str, int]]) -> Path:
    """root/<class>/<prefix>-<i>.png for each class and file-name prefix."""
    rng = np.random.default_rng(len(str(root)))
    for name, prefixes in counts.items():
        (root / name).mkdir(parents=True)
        for prefix, n in prefixes.items():
            for i in range(n):
                Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(root / name / f"{prefix}-{i:04d}.png")
    return root


@pytest.fixture
def two_folders(tmp_path) -> list[Path]:
    """Like P-ADSD: one folder with both classes, one with extra negatives only; the same
    file names occur in both."""
    a = folder(tmp_path / "patches", {"Healthy": {"train": 20, "validation": 6}, "Unhealthy": {"train": 20, "validation": 6}})
    b = folder(tmp_path / "extra", {"Healthy": {"train": 30, "validation": 8}})
    return [a, b]


def test_folders_merge_class_by_class_and_equal_names_stay_apart(two_folders):
    scanned = scan_dataset(two_folders)
    assert scanned.class_names == ["Healthy", "Unhealthy"]
    assert Counter(scanned.class_names[s.label] for s in scanned.samples) == {"Healthy": 26 + 38, "Unhealthy": 26}
    names = [s.path.name for s in scanned.samples]
    assert len(set(s.path for s in scanned.samples)) == len(names) > len(set(names))  # train-0000.png twice
    assert scanned.root == two_folders[0].parent.resolve()


def test_published_files_are_held_out_and_the_rest_split_by_fraction(two_folders, tmp_path):
    scanned = scan_dataset(two_folders)
    split = pattern_split(scanned.samples, "validation-=test", {"validation": 0.1, "test": 0.15}, seed=0)
    test = [s for s in split if s.subset == "test"]
    assert {s.path.name.split("-")[0] for s in test} == {"validation"} and len(test) == 6 + 6 + 8
    rest = [s for s in split if s.subset != "test"]
    assert all(s.path.name.startswith("train-") for s in rest) and len(rest) == 70
    validation = [s for s in rest if s.subset == "validation"]
    assert {s.label for s in validation} == {0, 1} and len(validation) == round(50 * 0.1) + round(20 * 0.1)
    # the manifest names files relative to the folders' common parent and reads back the same
    write_split(tmp_path / "split.csv", split, scanned.root, scanned.class_names)
    assert read_split(tmp_path / "split.csv", scanned.root, scanned.class_names) == split


def test_a_pattern_may_name_the_validation_subset_instead(two_folders):
    split = pattern_split(scan_dataset(two_folders).samples, "validation-=validation", {"validation": 0.1, "test": 0.2}, 1)
    assert all(s.path.name.startswith("validation-") for s in split if s.subset == "validation")
    assert {s.subset for s in split if s.path.name.startswith("train-")} == {"train", "test"}


@pytest.mark.parametrize("spec, message", [
    ("validation-", "must be REGEX=SUBSET"), ("validation-=holdout", "must be REGEX=SUBSET"),
    ("(=test", "not a valid regular expression"), ("nothing-=test", "matches no file name"),
    (".*=test", "no file in train, validation"),
])
def test_bad_split_patterns_are_one_line(two_folders, spec, message):
    with pytest.raises(DataError, match=message):
        pattern_split(scan_dataset(two_folders).samples, spec, {"validation": 0.1, "test": 0.1}, 0)


def test_split_pattern_is_checked_with_the_config():
    with pytest.raises(ConfigError, match="must be REGEX=SUBSET"):
        TrainConfig(split_pattern="validation-").validate()
    with pytest.raises(ConfigError, match="not both"):
        TrainConfig(split_pattern="a=test", split_file="x.csv").validate()


def test_runs_saved_with_one_data_dir_still_load():
    saved = {k: v for k, v in TrainConfig().to_dict().items() if k != "data_dirs"}
    assert TrainConfig.from_dict({**saved, "data_dir": "/data/x"}).validate().data_dirs == ["/data/x"]


def scores(n_neg=800, n_pos=200, seed=0):
    pytest.importorskip("sklearn", reason="choose_threshold's ROC points come from scikit-learn (train extra)")
    rng = np.random.default_rng(seed)
    labels = np.r_[np.zeros(n_neg, bool), np.ones(n_pos, bool)]
    return labels, 1 / (1 + np.exp(-(rng.normal(0, 1, len(labels)) + 2.0 * labels - 1.0)))


def rates(labels, p, threshold):
    predicted = p >= threshold
    return predicted[labels].mean(), (~predicted[~labels]).mean()


@pytest.mark.parametrize("target", [0.8, 0.9, 0.95])
def test_a_sensitivity_target_is_reached_at_the_highest_such_threshold(target):
    labels, p = scores()
    t = choose_threshold(labels, p, f"sensitivity={target}")
    assert rates(labels, p, t)[0] >= target
    higher = np.sort(p[p > t])[0]  # the next threshold up no longer reaches it
    assert rates(labels, p, higher)[0] < target


@pytest.mark.parametrize("target", [0.9, 0.97])
def test_a_specificity_target_is_reached_at_the_lowest_such_threshold(target):
    labels, p = scores()
    t = choose_threshold(labels, p, f"specificity={target}")
    assert rates(labels, p, t)[1] >= target
    lower = np.sort(p[p < t])[-1]
    assert rates(labels, p, lower)[1] < target


def test_youden_and_accuracy_pick_the_best_threshold_of_all():
    labels, p = scores(seed=1)
    candidates = np.unique(p)
    youden = [sum(rates(labels, p, c)) - 1 for c in candidates]
    accuracy = [((p >= c) == labels).mean() for c in candidates]
    assert sum(rates(labels, p, choose_threshold(labels, p, "youden"))) - 1 == pytest.approx(max(youden))
    assert ((p >= choose_threshold(labels, p, "accuracy")) == labels).mean() == pytest.approx(max(accuracy))
    assert choose_threshold(labels, p, "argmax") == 0.5


@pytest.mark.parametrize("rule", ["sensitivity=0", "sensitivity=1.5", "specificity=x", "best", "youden=1"])
def test_bad_operating_points_are_refused(rule):
    with pytest.raises(ConfigError, match="operating point"):
        parse_operating_point(rule)


def test_on_a_separable_split_youden_sits_in_the_middle_of_the_gap():
    """Twenty images, perfectly separated, the positives at p >= 0.99999: the boundary is not put on
    the lowest positive (finer than an INT8 output resolves) but midway to the highest negative."""
    pytest.importorskip("sklearn", reason="choose_threshold's ROC points come from scikit-learn (train extra)")
    labels = np.r_[np.zeros(10, int), np.ones(10, int)]
    p = np.r_[np.linspace(0.01, 0.40, 10), np.linspace(0.99999, 1.0, 10)]
    for rule in ("youden", "accuracy"):
        t = choose_threshold(labels, p, rule)
        assert t == pytest.approx((0.40 + 0.99999) / 2) and ((p >= t) == labels).all(), rule
