"""The --csv report (edge/report_csv.py): every row written, no file replaced, nothing left by a
failed run, no cell a spreadsheet would execute. TF-free."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from artery_edge.cli import app
from tests.bad_inputs import model, one_error_line, save_png  # noqa: F401 (model: a fixture)

runner = CliRunner()


# a non-UTF-8 file name among many: every row written, the CSV valid UTF-8
def test_a_non_utf8_file_name_does_not_break_the_csv(model, tmp_path):
    folder = tmp_path / "images"
    for i in range(3):
        save_png(folder / f"ok{i}.png", i)
    odd = os.fsdecode(os.fsencode(str(folder)) + b"/bad\xff.png")
    save_png(Path(odd))
    out = tmp_path / "out.csv"
    result = runner.invoke(app, ["infer", "--model", str(model), "--image", str(folder), "--csv", str(out)])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(out.read_bytes().decode("utf-8"))))
    assert len(rows) == 4 and any("\\udcff" in row["file"] or "\\xff" in row["file"] for row in rows)


# no check-then-write: a file that appears while writing is never replaced
def test_csv_claims_its_name_first_and_never_replaces(tmp_path):
    from artery_edge.edge.report_csv import ResultsCsv

    target = tmp_path / "r.csv"
    target.write_text("precious")
    with pytest.raises(FileExistsError, match="refusing to overwrite"):
        ResultsCsv.create(target, ["file"])
    assert target.read_text() == "precious"


def test_a_failed_run_removes_its_own_partial_csv(tmp_path):
    from artery_edge.edge.report_csv import ResultsCsv

    target = tmp_path / "r.csv"
    with pytest.raises(RuntimeError):
        with ResultsCsv.create(target, ["file"]) as table:
            table.write({"file": "a.png"})
            raise RuntimeError("disk full")
    assert not target.exists()


# OS errors are one line: an output path under a regular file
def test_csv_under_a_file_is_one_error_line(model, tmp_path):
    image = save_png(tmp_path / "x.png")
    (tmp_path / "plain").write_text("a file, not a folder")
    result = runner.invoke(app, ["infer", "--model", str(model), "--image", str(image),
                                 "--csv", str(tmp_path / "plain" / "out.csv")])
    assert result.exit_code == 1 and "not a directory" in one_error_line(result)


# file names that a spreadsheet would execute are neutralised in the CSV
def test_csv_cells_cannot_become_formulas(model, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    save_png(tmp_path / "=HYPERLINK(1).png")
    result = runner.invoke(app, ["infer", "--model", str(model), "--image", "=HYPERLINK(1).png", "--csv", "r.csv"])
    assert result.exit_code == 0, result.output
    assert next(csv.DictReader(open(tmp_path / "r.csv")))["file"] == "'=HYPERLINK(1).png"
    from artery_edge.edge.report_csv import spreadsheet_safe

    for dangerous in ("=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"):
        assert spreadsheet_safe(dangerous) == "'" + dangerous
    assert spreadsheet_safe("plain.png") == "plain.png" and spreadsheet_safe(0.5) == 0.5
