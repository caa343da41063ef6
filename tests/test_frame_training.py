"""`train --task map` -> `convert` -> `scan` / `evaluate` on synthetic whole frames (tiny model, CPU)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorflow", reason="TensorFlow not installed (train extra)")

from typer.testing import CliRunner  # noqa: E402

from artery_edge.cli import app  # noqa: E402
from artery_edge.edge.annotations import load_frames  # noqa: E402
from artery_edge.edge.scanner import FrameScanner  # noqa: E402
from tests.conftest import TEST_SEED  # noqa: E402
from artery_edge.trainer.synthetic_frames import synthesize_frames  # noqa: E402

runner = CliRunner()
SIZE = 64


@pytest.fixture(scope="module")
def frame_run(tmp_path_factory) -> Path:
    """A tiny map run (alpha 0.35, 64 px, from scratch: no ImageNet weights needed), converted."""
    root = tmp_path_factory.mktemp("frames")
    synthesize_frames(root / "data", 24, size=SIZE, seed=TEST_SEED)
    result = runner.invoke(app, [
        "train", str(root / "data"), "--task", "map", "--image-size", str(SIZE), "--alpha", "0.35",
        "--weights", "none", "--batch-size", "8", "--epochs", "1", "--fine-tune-epochs", "1",
        "--learning-rate", "1e-3", "--seed", str(TEST_SEED), "--output-dir", str(root / "runs"),
        "--run-name", "map", "--no-tensorboard", "--json"])
    assert result.exit_code == 0, result.output
    run = root / "runs" / "map"
    converted = runner.invoke(app, ["convert", str(run), "--quantize", "float32,int8",
                                    "--calibration-images", "8"])
    assert converted.exit_code == 0, converted.output
    return run


def test_map_run_records_what_the_device_needs(frame_run):
    record = json.loads((frame_run / "run.json").read_text())
    assert record["task"] == "map" and record["labels"] == ["stenosis"] and record["input_size"] == SIZE
    assert 0 < record["threshold"] < 1 and record["operating_point"] == "arcade-f1"
    assert record["decoding"]["min_area"] >= 1 and len(record["model_sha256"]) == 64
    metrics = json.loads((frame_run / "metrics.json").read_text())
    assert 0 <= metrics["arcade_f1"] <= 1 and metrics["frames"] == 6
    assert (frame_run / "history.png").is_file() and (frame_run / "model.keras").is_file()


def test_int8_map_agrees_with_keras_and_carries_the_threshold(frame_run):
    """Parity on the validation frames: the INT8 map within 0.02 of Keras' on average. Not a bound
    per pixel: at a region's edge, where the sigmoid is steep, one pixel can move by most of the
    range (the released model: mean 0.001, largest pixel per frame 0.38 median)."""
    from artery_edge.evaluation.frames import keras_maps
    from artery_edge.trainer.runs import load_run

    run = load_run(frame_run)
    frames = load_frames(frame_run.parent.parent / "data" / "val")
    keras = keras_maps(run, frames)
    scanner = FrameScanner(frame_run / "model_int8.tflite")
    assert scanner.threshold == pytest.approx(run.threshold) and scanner.input_size == SIZE
    gaps = [np.abs(scanner.scan(frame.path).probability_map - expected).mean() for frame, expected in zip(frames, keras)]
    print(f"INT8 vs Keras mean |dp| per frame: {np.round(gaps, 4)}")
    assert max(gaps) < 0.02


def test_evaluate_a_map_run_side_by_side(frame_run, tmp_path):
    result = runner.invoke(app, ["evaluate", "--run", str(frame_run), "--bootstrap", "50", "--json",
                                 "--out", str(tmp_path / "evaluation")])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert set(report["models"]) == {"keras", "float32", "int8"} and report["frames"] == 6
    assert report["parity_with_keras"]["float32"]["max_abs_map_diff_max"] < 1e-3
    assert (tmp_path / "evaluation" / "froc.png").is_file()


def test_task_map_refuses_a_size_off_the_grid_and_a_class_folder_dataset(tmp_path, synthetic_dir):
    odd = runner.invoke(app, ["train", str(tmp_path), "--task", "map", "--image-size", "100"])
    assert odd.exit_code != 0 and "multiple of 32" in odd.output
    folders = runner.invoke(app, ["train", str(synthetic_dir), "--task", "map", "--image-size", "64",
                                  "--output-dir", str(tmp_path / "runs")])
    assert folders.exit_code == 1 and "error:" in folders.output
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_a_map_run_continues_from_another_at_a_larger_input(frame_run, tmp_path):
    """--init-from a map run: its weights at another input size (the map model is fully convolutional),
    its width, the parent recorded; a classifier run is refused as parent."""
    from artery_edge.trainer.runs import load_run

    data = Path(json.loads((frame_run / "config.json").read_text())["data_dirs"][0])
    result = runner.invoke(app, [
        "train", str(data), "--task", "map", "--image-size", str(SIZE + 32), "--init-from", str(frame_run),
        "--batch-size", "8", "--epochs", "0", "--fine-tune-epochs", "1", "--learning-rate", "1e-4",
        "--seed", str(TEST_SEED), "--output-dir", str(tmp_path / "runs"), "--run-name", "longer", "--no-tensorboard"])
    assert result.exit_code == 0, result.output
    child, parent = load_run(tmp_path / "runs" / "longer"), load_run(frame_run)
    assert child.image_size == SIZE + 32 and child.config.alpha == parent.config.alpha == 0.35
    assert child.parent["model_sha256"] == parent.model_sha256 and child.parent["operating_point"] == "arcade-f1"
    assert "weights from map" in result.output


def test_a_parent_of_another_task_and_classifier_only_options_are_refused():
    from types import SimpleNamespace

    from artery_edge.trainer.config import ConfigError, TrainConfig
    from artery_edge.trainer.frame_training import frame_parent
    from artery_edge.trainer.parent import check_task

    with pytest.raises(ConfigError, match="is a classify run; --task map starts from a map run"):
        check_task(SimpleNamespace(task="classify", run_dir=Path("a-classifier-run")), "map")
    with pytest.raises(ConfigError, match="is a map run; --task classify starts from a classify run"):
        check_task(SimpleNamespace(task="map", run_dir=Path("a-map-run")), "classify")
    with pytest.raises(ConfigError, match="--replay: --task classify only"):
        frame_parent(TrainConfig(data_dirs=["frames"], task="map", init_from="run", replay=3))
    assert frame_parent(TrainConfig(data_dirs=["frames"], task="map")) is None
