"""`artery-edge infer` (files, folders, camera/video loop) and `artery-edge benchmark`, TF-free."""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from artery_edge.cli import app
from artery_edge.edge import ModelMetadata
from tests.tflite_builder import build_tiny_classifier, expected_probabilities

runner = CliRunner()


@pytest.fixture
def model(tmp_path) -> Path:
    meta = ModelMetadata(labels=["Healthy", "Unhealthy"], input_size=8, precision="int8")
    return build_tiny_classifier(tmp_path / "tiny.tflite", "uint8", metadata=meta)


@pytest.fixture
def folder(tmp_path) -> Path:
    root = tmp_path / "images"
    (root / "nested").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(root / f"ok{i}.png")
    Image.fromarray(rng.integers(0, 256, (30, 30), dtype=np.uint8), "L").save(root / "nested" / "gray.jpg")
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n trailing garbage")
    (root / "notes.txt").write_text("ignored")
    return root


def error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("error:")]


def test_folder_with_a_corrupt_file_reports_it_and_exits_non_zero(model, folder):
    result = runner.invoke(app, ["infer", "--model", str(model), "--image", str(folder), "--json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["failed"] == 1 and len(report["results"]) == 5
    by_name = {Path(r["file"]).name: r for r in report["results"]}
    assert by_name["broken.png"]["error"] and by_name["broken.png"]["label"] is None
    pixels = np.asarray(Image.open(folder / "ok0.png").convert("RGB").resize((8, 8), Image.Resampling.BILINEAR))
    assert abs(by_name["ok0.png"]["p_Unhealthy"] - expected_probabilities(pixels)[1]) <= 1 / 256 + 1e-6
    assert "Traceback" not in result.output


def test_files_in_class_folders_show_their_true_class(model, tmp_path):
    """A held-out file under Healthy/ or Unhealthy/ is printed with its true class and a verdict."""
    rng = np.random.default_rng(1)
    for name in ("Healthy", "Unhealthy", "elsewhere"):
        (tmp_path / name).mkdir()
        Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)).save(tmp_path / name / "x.png")
    args = ["infer", "--model", str(model), "--threshold", "0.0"] + [
        a for name in ("Healthy", "Unhealthy", "elsewhere") for a in ("--image", str(tmp_path / name / "x.png"))]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = {Path(line.split()[-1]).parent.name: line for line in result.stdout.splitlines()[1:]}
    assert "Healthy WRONG" in rows["Healthy"]  # threshold 0: everything is Unhealthy
    assert "Unhealthy ok" in rows["Unhealthy"]
    assert rows["elsewhere"].split()[3] == "-"
    assert "1 of 2 correct" in result.stderr
    report = json.loads(runner.invoke(app, args + ["--json"]).stdout)
    assert [r["true_label"] for r in report["results"]] == ["Healthy", "Unhealthy", None]


def test_table_csv_and_threshold(model, folder, tmp_path):
    good = [str(folder / f"ok{i}.png") for i in range(3)]
    out = tmp_path / "results.csv"
    args = ["infer", "--model", str(model), "--threshold", "0.0", "--csv", str(out)]
    for path in good:
        args += ["--image", path]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0].split()[:2] == ["label", "p(Unhealthy)"]
    rows = list(csv.DictReader(out.open()))
    assert [row["label"] for row in rows] == ["Unhealthy"] * 3  # threshold 0: always positive
    again = runner.invoke(app, args)
    assert again.exit_code != 0 and "refusing to overwrite" in again.output


@pytest.mark.parametrize(
    "args, message",
    [(["--image", "IMG"], "no such model"), (["--camera", "0", "--image", "IMG"], "exactly one of"),
     (["--image", "IMG", "--threshold", "2"], "between 0 and 1")],
)
def test_usage_errors(tmp_path, folder, args, message):
    args = [str(folder / "ok0.png") if a == "IMG" else a for a in args]
    result = runner.invoke(app, ["infer", "--model", str(tmp_path / "missing.tflite"), *args])
    assert result.exit_code != 0
    assert message in "\n".join(error_lines(result.output)), result.output


def test_every_file_failing_is_an_error(model, tmp_path):
    (tmp_path / "zero.png").write_bytes(b"")
    result = runner.invoke(app, ["infer", "--model", str(model), "--image", str(tmp_path / "zero.png")])
    assert result.exit_code == 1 and "empty file" in result.output


def write_video(path: Path, frames: int = 12) -> Path:
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(frames):
        frame = np.zeros((48, 64, 3), np.uint8)
        frame[..., 2 if i % 2 else 0] = 220  # alternate red and blue (BGR order on disk)
        writer.write(frame)
    writer.release()
    return path


def test_video_loop_headless_converts_bgr_to_rgb(model, tmp_path):
    pytest.importorskip("cv2", reason="OpenCV not installed (camera extra)")
    video = write_video(tmp_path / "clip.avi")
    result = runner.invoke(app, ["infer", "--model", str(model), "--video", str(video), "--no-display",
                                 "--frames", "6", "--json"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["frame"] for line in lines] == [1, 2, 3, 4, 5, 6]
    # frame 1 is blue on disk (BGR channel 0) -> RGB blue -> Unhealthy; frame 2 is red -> Healthy
    assert lines[0]["label"] == "Unhealthy" and lines[1]["label"] == "Healthy"
    every = runner.invoke(app, ["infer", "--model", str(model), "--video", str(video), "--no-display", "--every", "4"])
    assert every.exit_code == 0 and every.stdout.count("frame ") == 3  # 12 frames, every 4th


def test_camera_that_does_not_exist(model):
    pytest.importorskip("cv2", reason="OpenCV not installed (camera extra)")
    result = runner.invoke(app, ["infer", "--model", str(model), "--camera", "97", "--no-display"])
    assert result.exit_code != 0 and error_lines(result.output) == ["error: cannot open camera 97"]


def test_benchmark_json_side_by_side(model, tmp_path):
    float_model = build_tiny_classifier(tmp_path / "f.tflite", "float32",
                                        metadata=ModelMetadata(labels=["a", "b"], input_size=8, precision="float32"))
    result = runner.invoke(app, ["benchmark", "--model", str(model), "--model", str(float_model),
                                 "--runs", "20", "--warmup", "2", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [r["precision"] for r in report] == ["int8", "float32"]
    for entry in report:
        assert entry["p50_ms"] <= entry["p95_ms"] and entry["mean_ms"] > 0 and entry["runs"] == 20
        assert entry["size_bytes"] > 0 and entry["peak_rss_mb"] > 0 and entry["backend"]
        assert entry["throughput_ips"] > 0 and entry["load_ms"] > 0


def test_benchmark_of_a_bad_model(tmp_path):
    (tmp_path / "bad.tflite").write_text("nope")
    result = runner.invoke(app, ["benchmark", "--model", str(tmp_path / "bad.tflite")])
    assert result.exit_code != 0 and "not a TFLite model" in result.output


NO_TORNADO = pytest.mark.skipif(importlib.util.find_spec("tornado") is None,
                                reason="the serve extra (tornado) is not installed")


@pytest.mark.parametrize("command", [["inspect", "MODEL"],
                                     pytest.param(["serve", "--model", "MODEL", "--port", "0"], marks=NO_TORNADO),
                                     ["infer", "--model", "MODEL", "--image", "IMAGE"]])
def test_a_model_without_class_names_gets_a_hint_naming_real_options(tmp_path, command):
    """Only infer and benchmark have --labels: inspect and serve must not tell a user to pass it."""
    from tests.bad_inputs import cli, one_error_line

    model = build_tiny_classifier(tmp_path / "foreign.tflite", "uint8")
    image = tmp_path / "x.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(image)
    line = one_error_line(cli(*[{"MODEL": str(model), "IMAGE": str(image)}.get(a, a) for a in command]))
    assert "no artery-edge metadata with class names" in line
    assert "infer and benchmark take them as --labels" in line and "pass --labels" not in line


def test_inspect_names_the_card_that_lists_the_files_sha256(model):
    """The card whose figures belong to this file: one beside it (or in its run's evaluation
    folder) that lists its SHA-256; a card of another file is not named; the packaged reference
    model's card is the repository's."""
    from artery_edge.edge.metadata import sha256_of_file

    card = model.parent / "evaluation" / "MODEL_CARD.md"
    card.parent.mkdir()
    card.write_text("| `model_int8.tflite` | `" + "0" * 64 + "` |\n")
    assert "card: none found" in runner.invoke(app, ["inspect", str(model)]).stdout
    card.write_text(f"| `model_int8.tflite` | `{sha256_of_file(model)}` |\n")
    shown = runner.invoke(app, ["inspect", str(model), "--json"]).stdout
    assert json.loads(shown)["card"] == str(card)
    assert "models/reference/MODEL_CARD.md" in runner.invoke(app, ["inspect"]).stdout


def test_benchmark_refuses_frame_for_a_patch_classifier_before_any_work(model, tmp_path):
    """--frame times a whole-frame model's scan; given with patch classifiers only it would be ignored."""
    Image.new("RGB", (64, 64)).save(tmp_path / "frame.png")
    result = runner.invoke(app, ["benchmark", "--model", str(model), "--frame", str(tmp_path / "frame.png")])
    assert result.exit_code == 2 and error_lines(result.output) == [
        "error: --frame applies to whole-frame models only (it times their scan): leave it out for a patch classifier"]
