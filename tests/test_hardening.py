"""Regression tests for the hostile-input defects (numbered as in the hardening issue), TF-free.

The promise: every bad input ends in a per-file error, a skipped and reported file, a
correct result, or one `error:` line with a non-zero exit; nothing is lost or overwritten.
"""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from artery_edge.cli import app
from edge import Classifier, ModelMetadata
from edge.errors import ImageError, ModelError, PredictionError
from edge.imaging import open_image
from tests.tflite_builder import build_tiny_classifier
from trainer.config import ConfigError, TrainConfig, load_config_file
from trainer.data import DataError, scan_dataset

runner = CliRunner()
LABELS = ["Healthy", "Unhealthy"]


@pytest.fixture
def model(tmp_path) -> Path:
    return build_tiny_classifier(tmp_path / "tiny.tflite", "uint8",
                                 metadata=ModelMetadata(labels=LABELS, input_size=8, precision="int8"))


def save_png(path: Path, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (12, 12, 3), dtype=np.uint8)).save(path, "PNG")
    return path


def cli(*args: str) -> subprocess.CompletedProcess:
    """The installed entry point as a user runs it (usage errors go through ``main``)."""
    return subprocess.run([sys.executable, "-m", "artery_edge.cli", *args], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONIOENCODING": "utf-8"})


def one_error_line(result) -> str:
    stderr = result.stderr if isinstance(result.stderr, str) else ""
    lines = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in result.stdout + stderr, stderr
    return lines[0]


# 2. a class whose images are all unreadable is an error, not a silently one-class run
def test_a_class_with_no_readable_image_is_an_error(tmp_path):
    save_png(tmp_path / "Healthy" / "a.png")
    (tmp_path / "Unhealthy").mkdir()
    (tmp_path / "Unhealthy" / "b.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    with pytest.raises(DataError, match="Unhealthy .* no readable image"):
        scan_dataset(tmp_path)


# 3. a file Pillow recognises by content as another format, and any decoder exception
def test_a_crafted_file_of_another_format_is_a_per_file_error(tmp_path):
    path = tmp_path / "crafted.png"
    Image.new("RGB", (4, 4)).save(path, "TIFF")  # real format: TIFF, which the project does not claim
    with pytest.raises(ImageError, match="not a readable image"):
        open_image(path)


def test_any_decoder_exception_is_a_per_file_error(tmp_path, monkeypatch):
    path = save_png(tmp_path / "x.png")

    def explode(self):
        raise NotImplementedError("unsupported sub-format")

    monkeypatch.setattr(Image.Image, "load", explode)
    with pytest.raises(ImageError, match="NotImplementedError"):
        open_image(path)


# 4. a NaN output is an error for that image, never "Healthy", and JSON stays JSON
def test_a_nan_output_is_an_error_not_a_class(tmp_path):
    path = build_tiny_classifier(tmp_path / "nan.tflite", "float32", bias=[np.nan, np.nan],
                                 metadata=ModelMetadata(labels=LABELS, input_size=8, precision="float32"))
    image = save_png(tmp_path / "x.png")
    with pytest.raises(PredictionError, match="not finite"):
        Classifier(path).predict(image)
    result = runner.invoke(app, ["infer", "--model", str(path), "--image", str(image), "--json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)  # strict JSON: no bare NaN
    assert report["failed"] == 1 and report["results"][0]["label"] is None


def test_a_flipped_bit_in_a_weight_is_refused_at_load(tmp_path):
    """The metadata records a checksum of the whole file: a corrupted file is refused before
    LiteRT sees it (LiteRT itself can crash on a damaged flatbuffer)."""
    from tests.tflite_builder import WEIGHTS

    path = build_tiny_classifier(tmp_path / "m.tflite", "float32",
                                 metadata=ModelMetadata(labels=LABELS, input_size=8, precision="float32"))
    data = bytearray(path.read_bytes())
    at = bytes(data).index(WEIGHTS.tobytes()) + 3  # the high byte of the first float32 weight
    data[at] ^= 0x40  # one exponent bit
    path.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="checksum"):
        Classifier(path)


# 5. a non-UTF-8 file name among many: every row written, the CSV valid UTF-8
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


# 6. no check-then-write: a file that appears while writing is never replaced
def test_csv_claims_its_name_first_and_never_replaces(tmp_path):
    from edge.report_csv import ResultsCsv

    target = tmp_path / "r.csv"
    target.write_text("precious")
    with pytest.raises(FileExistsError, match="refusing to overwrite"):
        ResultsCsv.create(target, ["file"])
    assert target.read_text() == "precious"


def test_a_failed_run_removes_its_own_partial_csv(tmp_path):
    from edge.report_csv import ResultsCsv

    target = tmp_path / "r.csv"
    with pytest.raises(RuntimeError):
        with ResultsCsv.create(target, ["file"]) as table:
            table.write({"file": "a.png"})
            raise RuntimeError("disk full")
    assert not target.exists()


# 7. OS errors are one line: an output path under a regular file
def test_csv_under_a_file_is_one_error_line(model, tmp_path):
    image = save_png(tmp_path / "x.png")
    (tmp_path / "plain").write_text("a file, not a folder")
    result = runner.invoke(app, ["infer", "--model", str(model), "--image", str(image),
                                 "--csv", str(tmp_path / "plain" / "out.csv")])
    assert result.exit_code == 1 and "not a directory" in one_error_line(result)


# 8. TOML values of the wrong type are one-line config errors
@pytest.mark.parametrize("text", ['image_size = "abc"', "weights = 5", "train = 5", 'output_dir = ["a"]',
                                  'learning_rate = "fast"', "image_size = 48.5", "flip = 1"])
def test_toml_values_of_the_wrong_type_are_refused(tmp_path, text):
    path = tmp_path / "c.toml"
    path.write_text(text + "\n")
    with pytest.raises(ConfigError):
        TrainConfig(**load_config_file(path)).validate()


# 9 and 20. every value checked before anything is created
@pytest.mark.parametrize("changes", [
    {"alpha": float("inf")}, {"alpha": float("nan")}, {"zoom": -2.0}, {"brightness": 2.0}, {"seed": 2**32},
    {"image_size": 100000}, {"run_name": "../x"}, {"run_name": ".."}, {"learning_rate": 0.0},
])
def test_bad_values_are_refused_before_any_run_exists(changes):
    with pytest.raises(ConfigError):
        TrainConfig(**changes).validate()


def test_a_weights_file_that_is_not_hdf5_is_refused(tmp_path):
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(b"not hdf5 at all")
    with pytest.raises(ConfigError, match="not an HDF5 file"):
        TrainConfig(weights=str(garbage)).validate()


# 10. options that used to crash natively are refused
@pytest.mark.parametrize("args, message", [
    (["--image", "x.png", "--threads", "100000"], "--threads must lie between"),
    (["--camera", "-1", "--no-display"], "--camera must be a camera index"),
    (["--video", "clip.mp4", "--csv", "out.csv", "--no-display"], "--csv applies to --image only"),
])
def test_options_that_crashed_natively_are_refused(model, args, message):
    result = runner.invoke(app, ["infer", "--model", str(model), *args])
    assert result.exit_code == 2 and message in one_error_line(result)


def test_a_window_without_a_display_is_refused(model, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    result = runner.invoke(app, ["infer", "--model", str(model), "--video", "clip.mp4"])
    assert result.exit_code == 2 and "no display found" in one_error_line(result)


def test_benchmark_threads_are_checked(model):
    result = runner.invoke(app, ["benchmark", "--model", str(model), "--threads", "0"])
    assert result.exit_code == 2 and "--threads" in one_error_line(result)


# 12. labels can no longer be silently wrong
def test_labels_that_differ_from_the_models_own_are_refused(model, tmp_path):
    with pytest.raises(ModelError, match="differ from the model's own"):
        Classifier(model, labels=["Unhealthy", "Healthy"])
    assert Classifier(model, labels=LABELS).labels == LABELS  # the same labels are fine


def test_duplicate_labels_are_refused(tmp_path):
    bare = build_tiny_classifier(tmp_path / "bare.tflite", "uint8")
    with pytest.raises(ModelError, match="duplicate label"):
        Classifier(bare, labels=["A", "A"])
    dup = build_tiny_classifier(tmp_path / "dup.tflite", "uint8",
                                metadata=ModelMetadata(labels=["A", "A"], input_size=8, precision="int8"))
    with pytest.raises(ModelError, match="duplicate label"):
        Classifier(dup)


# 13. badly typed metadata is a one-line model error
@pytest.mark.parametrize("labels, size", [([0, 1], 8), (["A", ""], 8), (["A", "B"], "8"), ("AB", 8)])
def test_badly_typed_metadata_is_a_model_error(tmp_path, labels, size):
    path = build_tiny_classifier(tmp_path / "m.tflite", "uint8",
                                 metadata=ModelMetadata(labels=labels, input_size=size, precision="int8"))
    with pytest.raises(ModelError, match="malformed artery_edge metadata"):
        Classifier(path)


def test_a_damaged_run_file_is_a_data_error(tmp_path):
    from trainer.runs import load_run

    for name in ("run.json", "config.json", "split.csv", "model.keras"):
        (tmp_path / name).write_text("{}")
    (tmp_path / "run.json").write_text('{"class_names": "AB", "image_size": 8}')
    with pytest.raises(DataError, match="damaged run files"):
        load_run(tmp_path)
    (tmp_path / "run.json").write_text("{not json")
    with pytest.raises(DataError, match="damaged run files"):
        load_run(tmp_path)


# 14. file names that a spreadsheet would execute are neutralised in the CSV
def test_csv_cells_cannot_become_formulas(model, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    save_png(tmp_path / "=HYPERLINK(1).png")
    result = runner.invoke(app, ["infer", "--model", str(model), "--image", "=HYPERLINK(1).png", "--csv", "r.csv"])
    assert result.exit_code == 0, result.output
    assert next(csv.DictReader(open(tmp_path / "r.csv")))["file"] == "'=HYPERLINK(1).png"
    from edge.report_csv import spreadsheet_safe

    for dangerous in ("=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"):
        assert spreadsheet_safe(dangerous) == "'" + dangerous
    assert spreadsheet_safe("plain.png") == "plain.png" and spreadsheet_safe(0.5) == 0.5


# 18. nothing vanishes silently from a folder
def test_broken_symlinks_and_fifos_are_reported_per_file(model, tmp_path):
    folder = tmp_path / "images"
    save_png(folder / "ok.png")
    (folder / "dangling.png").symlink_to(folder / "missing.png")
    (folder / "loop.png").symlink_to(folder / "loop.png")
    os.mkfifo(folder / "pipe.png")
    result = runner.invoke(app, ["infer", "--model", str(model), "--image", str(folder), "--json"])
    report = json.loads(result.stdout)
    errors = {Path(r["file"]).name: r["error"] for r in report["results"] if r["error"]}
    assert result.exit_code == 1 and set(errors) == {"dangling.png", "loop.png", "pipe.png"}
    assert "no such file" in errors["dangling.png"] and "not a regular file" in errors["pipe.png"]


def test_an_unlistable_subfolder_is_reported(tmp_path, monkeypatch):
    import edge.imaging

    save_png(tmp_path / "Healthy" / "a.png")
    real_walk = os.walk

    def walk(root, onerror=None, **kwargs):
        onerror(PermissionError(13, "Permission denied", str(tmp_path / "Healthy" / "locked")))
        yield from real_walk(root, onerror=onerror, **kwargs)

    monkeypatch.setattr(edge.imaging.os, "walk", walk)
    problems: list[str] = []
    assert [p.name for p in edge.imaging.iter_image_files(tmp_path / "Healthy", problems)] == ["a.png"]
    assert problems == [f"{tmp_path / 'Healthy' / 'locked'}: folder skipped (permission denied)"]


def test_a_missing_image_among_good_ones_is_skipped_not_fatal(model, tmp_path):
    good = save_png(tmp_path / "ok.png")
    result = runner.invoke(app, ["infer", "--model", str(model), "--image", str(tmp_path / "gone.png"),
                                 "--image", str(good), "--json"])
    report = json.loads(result.stdout)
    assert result.exit_code == 1 and [r["label"] is not None for r in report["results"]] == [False, True]
    assert "no such file" in report["results"][0]["error"]


def test_a_permission_error_is_not_called_corrupt(tmp_path, monkeypatch):
    path = save_png(tmp_path / "x.png")

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(Image, "open", denied)
    with pytest.raises(ImageError, match="permission denied"):
        open_image(path)


# 19. usage errors are one `error:` line too
def test_usage_errors_are_one_error_line():
    result = cli("infer", "--no-such-option")
    assert result.returncode == 2 and "No such option" in one_error_line(result)
    assert "╭" not in result.stderr


# 20. the runtime's native log lines stay off the terminal unless --verbose
def test_litert_log_lines_are_silenced_unless_verbose(model, tmp_path):
    image = save_png(tmp_path / "x.png")
    quiet = cli("infer", "--model", str(model), "--image", str(image))
    assert quiet.returncode == 0 and "XNNPACK" not in quiet.stderr
    loud = cli("--verbose", "infer", "--model", str(model), "--image", str(image))
    assert loud.returncode == 0 and "XNNPACK" in loud.stderr


# 17. SIGTERM to benchmark ends its measuring child too
def test_sigterm_to_benchmark_stops_its_child(model):
    parent = subprocess.Popen([sys.executable, "-m", "artery_edge.cli", "benchmark", "--model", str(model),
                               "--runs", "100000000", "--warmup", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def children() -> list[int]:
        found = []
        for entry in Path("/proc").iterdir():
            try:
                if entry.name.isdigit() and (entry / "stat").read_text().split()[3] == str(parent.pid):
                    found.append(int(entry.name))
            except OSError:
                continue
        return found

    deadline = time.monotonic() + 60
    while not children() and time.monotonic() < deadline:
        time.sleep(0.2)
    child = children()
    assert child, "the measuring child never started"
    parent.send_signal(signal.SIGTERM)
    parent.wait(timeout=30)
    time.sleep(0.5)
    assert not Path(f"/proc/{child[0]}").exists() or "Z" in Path(f"/proc/{child[0]}/stat").read_text().split()[2]


def test_a_damaged_tensor_name_is_a_model_error(tmp_path):
    """Found by the long fuzz run: the interpreter decodes tensor names as UTF-8."""
    path = build_tiny_classifier(tmp_path / "m.tflite", "uint8")
    data = path.read_bytes().replace(b"image", b"\xff\xfemag")
    path.write_bytes(data)
    with pytest.raises(ModelError):
        Classifier(path, labels=LABELS)
