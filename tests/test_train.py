"""`artery-edge train` end to end, learnability of the synthetic set, and bad inputs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

pytest.importorskip("tensorflow", reason="TensorFlow not installed (train extra)")

from artery_edge.cli import app  # noqa: E402
from tests.conftest import REAL_DATA, needs_imagenet, needs_real_data, tiny_weights  # noqa: E402

runner = CliRunner()
TINY_ARGS = ["--image-size", "32", "--alpha", "0.35", "--epochs", "1", "--fine-tune-epochs", "1",
             "--batch-size", "16"]
ARTEFACTS = ["model.keras", "best.keras", "config.json", "split.csv", "history.csv", "history.json",
             "metrics.json", "run.json", "history.png", "samples.png", "samples_augmented.png"]


def run_train(data: Path, out: Path, *extra: str):
    args = ["train", str(data), "--output-dir", str(out / "models"), "--log-dir", str(out / "tb"),
            "--weights", tiny_weights(), *TINY_ARGS, *extra]
    return runner.invoke(app, args)


def test_train_end_to_end_writes_every_artefact(synthetic_dir, tmp_path):
    (tmp_path / "cfg.toml").write_text("dropout = 0.3\nepochs = 5\n")
    result = run_train(synthetic_dir, tmp_path, "--config", str(tmp_path / "cfg.toml"), "--json")
    assert result.exit_code == 0, result.output
    run_dir = Path(json.loads(result.stdout)["run_dir"])
    for name in ARTEFACTS:
        assert (run_dir / name).is_file() and (run_dir / name).stat().st_size > 0, name
    config = json.loads((run_dir / "config.json").read_text())
    assert config["dropout"] == 0.3 and config["epochs"] == 1  # file fills, CLI wins
    history = json.loads((run_dir / "history.json").read_text())
    assert history["stage1_epochs"] == 1 and len(history["loss"]) == 2
    assert [int(line.split(",")[0]) for line in (run_dir / "history.csv").read_text().splitlines()[1:]] == [0, 1]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for key in ("accuracy", "loss", "confusion_matrix", "sensitivity", "specificity", "roc_auc"):
        assert key in metrics
    assert np.sum(metrics["confusion_matrix"]) == metrics["n"] == 30
    assert any((tmp_path / "tb").rglob("events.out.tfevents*"))
    second = run_train(synthetic_dir, tmp_path, "--run-name", run_dir.name, "--fine-tune-epochs", "0")
    assert second.exit_code == 0, second.output
    assert (run_dir.parent / f"{run_dir.name}-2" / "model.keras").is_file()  # never overwrites


@needs_imagenet
def test_synthetic_set_is_learnable(imagenet_run):
    metrics = imagenet_run.metrics
    assert metrics["n"] == 30
    assert metrics["accuracy"] >= 0.8, metrics
    assert metrics["roc_auc"] >= 0.85, metrics


def test_keras_predict_api(trained_run, synthetic_dir):
    from artery_edge.trainer.predict import KerasPredictor

    predictor = KerasPredictor.from_run(trained_run.run_dir)
    prediction = predictor.predict(next((synthetic_dir / "Unhealthy").iterdir()))
    assert prediction.label in ("Healthy", "Unhealthy")
    assert abs(sum(prediction.probabilities.values()) - 1) < 1e-5


def bad_dataset(tmp_path: Path, kind: str) -> Path:
    root = tmp_path / "data"
    if kind == "missing":
        return root
    root.mkdir()
    if kind == "single":
        (root / "Healthy").mkdir()
        Image.new("RGB", (40, 40)).save(root / "Healthy" / "a.png")
    if kind == "few":
        for name in ("Healthy", "Unhealthy"):
            (root / name).mkdir()
            for i in range(2):
                Image.new("RGB", (40, 40), (i, i, i)).save(root / name / f"{i}.png")
    return root


@pytest.mark.parametrize(
    "kind, extra, message",
    [("missing", [], "does not exist"), ("empty", [], "no class folders"), ("single", [], "only one class"),
     ("few", [], "at least 3"), ("empty", ["--image-size", "16"], "must lie between"),
     ("empty", ["--weights", "/no/such.h5"], "does not exist")],
)
def test_bad_input_fails_in_one_line_and_writes_no_run(tmp_path, kind, extra, message):
    result = run_train(bad_dataset(tmp_path, kind), tmp_path, *extra)
    assert result.exit_code != 0
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], result.output
    assert "Traceback" not in result.output
    assert not list((tmp_path / "models").glob("*/model.keras")) if (tmp_path / "models").exists() else True
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").iterdir())


def test_corrupt_images_are_skipped_with_a_warning(tmp_path, synthetic_dir):
    data = tmp_path / "data"
    shutil.copytree(synthetic_dir, data)
    (data / "Healthy" / "zero.png").write_bytes(b"")
    (data / "Unhealthy" / "cut.png").write_bytes((data / "Unhealthy" / "synth-00000.png").read_bytes()[:100])
    result = run_train(data, tmp_path, "--fine-tune-epochs", "0")
    assert result.exit_code == 0, result.output
    assert "skipping" in result.output and "zero.png" in result.output and "cut.png" in result.output
    run = json.loads(next((tmp_path / "models").glob("*/run.json")).read_text())
    assert len(run["skipped"]) == 2


@needs_real_data
def test_smoke_on_a_sample_of_the_real_data(tmp_path):
    data = tmp_path / "real"
    for name in ("Healthy", "Unhealthy"):
        (data / name).mkdir(parents=True)
        for path in sorted((REAL_DATA / name).glob("*.png"))[:20]:
            (data / name / path.name).symlink_to(path)
    result = run_train(data, tmp_path, "--json")
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    assert metrics["n"] == 6 and 0 <= metrics["accuracy"] <= 1
