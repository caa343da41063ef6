"""What `train` accepts, refused before any work: data folders (twice, nested, one file reached
twice), split files (short rows, a file listed twice), --split-pattern regexes with commas,
option ranges (warm-up vs the stage) and atomic run files. TF-free."""

from __future__ import annotations

import os
import re
import string
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from artery_edge.trainer.config import ConfigError, TrainConfig, load_config_file
from artery_edge.trainer.samples import SUBSETS, DataError
from artery_edge.trainer.scan import scan_dataset
from artery_edge.trainer.split_files import read_split, split_from_file
from artery_edge.trainer.splits import parse_split_pattern

FOLDERS = ("a", "b", "a/x", "b/y")  # a/x lies inside a: overlapping data folders


def make_site(root: Path) -> Path:
    """Two sites, each a class-folder dataset, one nested inside the other's tree."""
    for site in FOLDERS:
        for label in ("Healthy", "Unhealthy"):
            folder = root / site / label
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(2):
                Image.fromarray(np.full((8, 8, 3), i, np.uint8)).save(folder / f"{site.replace('/', '_')}{i}.png")
    return root


@pytest.fixture(scope="module")
def sites(tmp_path_factory) -> Path:
    return make_site(tmp_path_factory.mktemp("sites"))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(FOLDERS + ("a/../a", "./b")), min_size=1, max_size=4))
def test_data_folders_never_count_an_image_twice(sites, chosen):
    """Any choice of folders: either refused (given twice, or one inside another), or every
    image is one sample."""
    roots = [sites / c for c in chosen]
    resolved = [r.resolve() for r in roots]
    overlapping = any(a.is_relative_to(b) for i, a in enumerate(resolved) for j, b in enumerate(resolved) if i != j)
    try:
        scanned = scan_dataset(roots, validate=False)
    except DataError as exc:
        assert overlapping and ("given twice" in str(exc) or "lies inside" in str(exc))
        return
    assert not overlapping
    files = [s.path.resolve() for s in scanned.samples]
    assert len(files) == len(set(files))


def test_a_file_reached_twice_through_a_link_is_refused(tmp_path):
    root = make_site(tmp_path)
    os.symlink(root / "a" / "Healthy" / "a0.png", root / "b" / "Unhealthy" / "alias.png")
    with pytest.raises(DataError, match="reached twice"):
        scan_dataset([root / "a", root / "b"], validate=False)


def split_csv(path: Path, rows: list[str]) -> Path:
    path.write_text("file,subset\n" + "".join(row + "\n" for row in rows))
    return path


@pytest.mark.parametrize("rows, message", [
    (["Healthy/a0.png,train", "Unhealthy/a0.png"], "line 3: the row has no subset value"),
    (["Healthy/a0.png,train", "Healthy/a0.png,test"], "line 3: Healthy/a0.png is listed twice (also line 2)"),
    (["Healthy/a0.png,train", "Healthy/./a0.png,test"], "listed twice"),  # the same file, spelt differently
])
def test_split_file_rows_that_are_short_or_repeated_are_refused(tmp_path, rows, message):
    root = make_site(tmp_path / "d") / "a"
    samples = scan_dataset(root, validate=False).samples
    with pytest.raises(DataError, match=re.escape(message)):
        split_from_file(samples, split_csv(tmp_path / "split.csv", rows), root)


def test_a_run_manifest_with_a_short_row_is_one_error(tmp_path):
    manifest = tmp_path / "split.csv"
    manifest.write_text("file,class,subset,group\nHealthy/a0.png,Healthy,train,\nHealthy/a1.png\n")
    with pytest.raises(DataError, match="line 3: the row has no class, subset value"):
        read_split(manifest, tmp_path, ["Healthy", "Unhealthy"])


REGEX_PART = st.text(alphabet=string.ascii_lowercase + "-_", min_size=1, max_size=6)
QUANTIFIED = st.builds(lambda a, m, n: f"{a}{{{m},{m + n}}}", REGEX_PART, st.integers(0, 3), st.integers(0, 3))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.one_of(REGEX_PART, QUANTIFIED, st.builds("{}[,;]{}".format, REGEX_PART, REGEX_PART)),
                          st.sampled_from(SUBSETS)), min_size=1, max_size=3))
def test_split_pattern_regexes_keep_their_commas(rules):
    """REGEX=SUBSET rules joined by commas parse back to the same rules, whatever commas the
    regexes hold (``{m,n}`` quantifiers, character classes)."""
    spec = ",".join(f"{regex}={name}" for regex, name in rules)
    assert [(r.pattern, name) for r, name in parse_split_pattern(spec)] == rules


@pytest.mark.parametrize("changes, message", [
    ({"schedule": "cosine", "warmup_epochs": 2.0, "epochs": 2}, "shorter than each training stage"),
    ({"schedule": "cosine", "warmup_epochs": 3.0, "epochs": 10, "fine_tune_epochs": 3}, "the shortest has 3"),
    ({"warmup_epochs": 1.0}, "applies to --schedule cosine"),
    ({"cluster_timeout": 0.0}, "cluster-timeout"),
    ({"cluster_timeout": float("inf")}, "cluster-timeout"),
    ({"run_name": "a\nb"}, "plain folder name"),
])
def test_option_ranges_are_checked_before_any_work(changes, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        TrainConfig(**changes).validate()


def test_a_warm_up_inside_every_stage_is_accepted():
    TrainConfig(schedule="cosine", warmup_epochs=1.0, epochs=2, fine_tune_epochs=14).validate()
    TrainConfig(schedule="cosine", warmup_epochs=1.0, epochs=0, fine_tune_epochs=2).validate()


def test_jit_compile_is_gone_but_old_runs_still_load(tmp_path):
    old = {**TrainConfig().to_dict(), "jit_compile": True, "data_dir": "/data/x"}
    old.pop("data_dirs")
    assert TrainConfig.from_dict(old).data_dirs == ["/data/x"]
    toml = tmp_path / "c.toml"
    toml.write_text("jit_compile = true\n")
    with pytest.raises(ConfigError, match="jit_compile was removed"):
        load_config_file(toml)
