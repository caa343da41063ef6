"""Text files a user hands in are read alike whatever tool saved them (issue 36): a spreadsheet's
"CSV UTF-8" and Windows editors start with a byte-order mark and end lines with CR LF. The split
file, the TOML config and the token file each give the same result saved either way. TF-free."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from artery_edge.edge.serve.options import read_token
from tests.bad_inputs import save_png
from artery_edge.trainer.config import load_config_file
from artery_edge.trainer.samples import SUBSETS, Sample
from artery_edge.trainer.scan import scan_dataset
from artery_edge.trainer.split_files import read_split, split_from_file, write_split

SAVES = {"plain": ("", "\n"), "spreadsheet (BOM, CRLF)": ("\ufeff", "\r\n"), "BOM only": ("\ufeff", "\n"),
         "CRLF only": ("", "\r\n")}


def save(path: Path, lines: list[str], how: str) -> Path:
    bom, newline = SAVES[how]
    path.write_bytes((bom + newline.join(lines) + newline).encode("utf-8"))
    return path


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("text") / "data"
    for name in ("Healthy", "Unhealthy"):
        for i in range(3):
            save_png(root / name / f"{i}.png", seed=i)
    return root


@pytest.mark.parametrize("how", SAVES)
def test_a_split_file_reads_the_same_however_it_was_saved(dataset, tmp_path, how):
    samples = scan_dataset(dataset).samples
    rows = ["file,subset"] + [f"{s.path.relative_to(dataset).as_posix()},{['train', 'validation', 'test'][i % 3]}"
                               for i, s in enumerate(samples)]
    plain, _ = split_from_file(samples, save(tmp_path / "plain.csv", rows, "plain"), dataset)
    assigned, unlisted = split_from_file(samples, save(tmp_path / "saved.csv", rows, how), dataset)
    assert unlisted == 0 and [(s.path, s.subset) for s in assigned] == [(s.path, s.subset) for s in plain]


@pytest.mark.parametrize("how", SAVES)
def test_a_run_manifest_resaved_by_a_spreadsheet_reads_the_same(dataset, tmp_path, how):
    classes = ["Healthy", "Unhealthy"]
    samples = [Sample(s.path, s.label, SUBSETS[i % 3]) for i, s in enumerate(scan_dataset(dataset).samples)]
    write_split(tmp_path / "split.csv", samples, dataset, classes)
    text = (tmp_path / "split.csv").read_text(encoding="utf-8").splitlines()
    resaved = read_split(save(tmp_path / "resaved.csv", text, how), dataset, classes)
    assert resaved == read_split(tmp_path / "split.csv", dataset, classes)


@pytest.mark.parametrize("how", SAVES)
def test_a_toml_config_reads_the_same_however_it_was_saved(tmp_path, how):
    lines = ["[train]", "image_size = 64", 'operating_point = "youden"']
    assert load_config_file(save(tmp_path / "c.toml", lines, how)) == {"image_size": 64, "operating_point": "youden"}


@given(st.sampled_from(list(SAVES)), st.text("ABCDEFabcdef0123456789._~+/=-", min_size=16, max_size=64))
@settings(max_examples=40, deadline=None)
def test_a_token_file_reads_the_same_however_it_was_saved(tmp_path_factory, how, token):
    assert read_token(save(tmp_path_factory.mktemp("token") / "token", [token], how)) == token
