"""`train` and `evaluate` on bad input: an unreadable test image is skipped and reported, bad
options are one `error:` line and create nothing, TensorFlow's start-up lines stay quiet."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

pytest.importorskip("tensorflow", reason="TensorFlow not installed (train extra)")

from artery_edge.cli import app  # noqa: E402
from tests.conftest import tiny_weights  # noqa: E402

runner = CliRunner()


def error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("error:")]


# one unreadable image in the test split: skipped and reported, no traceback, no hang
def test_evaluate_skips_an_unreadable_test_image(converted_run, synthetic_dir, tmp_path):
    run, _ = converted_run
    data, run_dir = tmp_path / "data", tmp_path / "run"
    shutil.copytree(synthetic_dir, data)
    shutil.copytree(run.run_dir, run_dir, ignore=shutil.ignore_patterns("evaluation*"))
    config = json.loads((run_dir / "config.json").read_text())
    (run_dir / "config.json").write_text(json.dumps({**config, "data_dirs": [str(data)]}))
    with open(run_dir / "split.csv", newline="") as handle:
        victim = next(row["file"] for row in csv.DictReader(handle) if row["subset"] == "test")
    (data / victim).write_bytes(b"\x89PNG\r\n\x1a\n not any more")
    result = subprocess.run([sys.executable, "-m", "artery_edge.cli", "evaluate", "--run", str(run_dir),
                             "--bootstrap", "5", "--json"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)  # 11: stdout is the JSON document alone
    assert len(report["skipped"]) == 1 and Path(victim).name in report["skipped"][0]
    assert f"warning: skipping {data / victim}" in result.stderr and "Traceback" not in result.stderr


# options checked only after the run folder existed: now nothing is created. A number out of its
# range exits 2, as every command's range errors do (issue 36: --init-blend and --teacher-weight exited 1)
@pytest.mark.parametrize("extra, message, code", [
    (["--alpha", "inf"], "alpha must be a finite number", 2), (["--zoom", "-2"], "zoom must lie between", 2),
    (["--brightness", "2"], "brightness must lie between", 2), (["--seed", "4294967296"], "seed must lie between", 2),
    (["--image-size", "100000"], "image size", 2), (["--init-blend", "1.5"], "init-blend must lie in", 2),
    (["--teacher", "elsewhere", "--teacher-weight", "2"], "teacher-weight must lie in", 2),
    (["--run-name", "../x"], "plain folder name", 1), (["--weights", "GARBAGE"], "not an HDF5 file", 1),
])
def test_bad_train_options_leave_no_run(synthetic_dir, tmp_path, extra, message, code):
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(b"nope")
    extra = [str(garbage) if a == "GARBAGE" else a for a in extra]
    result = runner.invoke(app, ["train", str(synthetic_dir), "--output-dir", str(tmp_path / "models"),
                                 "--image-size", "32", "--alpha", "0.35", "--weights", tiny_weights(), *extra])
    assert result.exit_code == code and len(error_lines(result.output)) == 1 and message in error_lines(result.output)[0]
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").iterdir())
    assert not (tmp_path / "x").exists()


def test_an_unwritable_output_folder_fails_before_training(synthetic_dir, tmp_path):
    (tmp_path / "plain").write_text("a file where the log folder should be")
    result = runner.invoke(app, ["train", str(synthetic_dir), "--output-dir", str(tmp_path / "models"),
                                 "--log-dir", str(tmp_path / "plain" / "tb"), "--image-size", "32", "--alpha", "0.35",
                                 "--weights", tiny_weights()])
    assert result.exit_code == 1 and "not a directory" in error_lines(result.output)[0]
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").iterdir())


# TensorFlow's native start-up lines stay out of a normal command's output
def test_tensorflow_log_lines_are_silenced():
    result = subprocess.run([sys.executable, "-m", "artery_edge.cli", "evaluate", "--run", "/no/such/run"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == ["error: run directory /no/such/run does not exist"]


# bootstrap rounds must be positive
def test_bootstrap_must_be_positive(converted_run):
    run, _ = converted_run
    result = runner.invoke(app, ["evaluate", "--run", str(run.run_dir), "--bootstrap", "-5"])
    assert result.exit_code == 2 and "--bootstrap" in error_lines(result.output)[0]
