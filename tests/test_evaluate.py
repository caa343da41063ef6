"""`artery-edge evaluate`: side-by-side metrics, agreement, operating point, artefacts, bad input."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

pytest.importorskip("tensorflow", reason="TensorFlow not installed (train extra)")

from artery_edge.cli import app  # noqa: E402
from artery_edge.evaluation.evaluate import sensitivity_threshold  # noqa: E402

runner = CliRunner()
METRICS = ("accuracy", "balanced_accuracy", "sensitivity", "specificity", "ppv", "npv", "f1", "roc_auc")


def test_report_metrics_agreement_and_artefacts(converted_run, tmp_path):
    run, _ = converted_run
    out = tmp_path / "evaluation"
    result = runner.invoke(app, ["evaluate", "--run", str(run.run_dir), "--bootstrap", "50", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert list(report["models"]) == ["keras", "float32", "float16", "dynamic", "int8"]
    assert report["n"] == 30 and report["evaluated_on"].startswith("test split")
    for name, entry in report["models"].items():
        for metric in METRICS:
            low, high = entry["ci95"][metric]
            assert low <= entry["metrics"][metric] <= high, (name, metric)
        assert np.sum(entry["confusion_matrix"]) == 30
    keras_accuracy = report["models"]["keras"]["metrics"]["accuracy"]
    assert report["models"]["keras"]["metrics"]["accuracy"] == pytest.approx(run.metrics["accuracy"])
    assert report["models"]["float32"]["metrics"]["accuracy"] == keras_accuracy
    assert report["agreement_with_keras"]["float32"]["label_agreement"] == 1.0
    assert report["agreement_with_keras"]["float32"]["max_abs_diff"] < 1e-4
    for name in ("metrics.json", "report.md", "roc.png", "confusion_keras.png", "confusion_int8.png",
                 "scatter_float16.png", "scatter_int8.png", "probabilities.npz"):
        assert (out / name).is_file(), name
    assert "| sensitivity |" in (out / "report.md").read_text()
    assert report["conversion"]["int8"]["weight_rounding"] == "calibrated"
    assert r"weight\_rounding calibrated" in (out / "report.md").read_text()  # Markdown-escaped metadata
    again = runner.invoke(app, ["evaluate", "--run", str(run.run_dir), "--bootstrap", "10", "--out", str(out)])
    assert again.exit_code == 0 and (tmp_path / "evaluation-2" / "metrics.json").is_file()  # nothing overwritten


def test_calibration_predictions_and_model_card(converted_run, tmp_path):
    import csv

    from artery_edge.trainer.runs import load_run

    run, models = converted_run
    out = tmp_path / "e"
    result = runner.invoke(app, ["evaluate", "--run", str(run.run_dir), "--bootstrap", "20", "--out", str(out),
                                 "--prevalence", "0.2", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    temperature = load_run(run.run_dir).temperature
    assert report["calibration"]["temperature"] == temperature != 1.0
    assert set(report["calibration"]["tflite_temperatures"].values()) == {temperature}  # baked into every file
    for name, entry in report["models"].items():
        assert 0 <= entry["ece"] <= 1 and sum(entry["reliability"]["count"]) == 30, name
        sens, spec = entry["metrics"]["sensitivity"], entry["metrics"]["specificity"]
        ppv = entry["at_prevalence"]["ppv"]
        if ppv is not None:
            assert ppv == pytest.approx(sens * 0.2 / (sens * 0.2 + (1 - spec) * 0.8))
    rows = list(csv.DictReader(open(out / "predictions.csv")))
    assert len(rows) == 30 and {r["true_class"] for r in rows} == {"Healthy", "Unhealthy"}
    probabilities = np.load(out / "probabilities.npz")["int8"][:, 1]
    assert [float(r["p_Unhealthy_int8"]) for r in rows] == pytest.approx(probabilities.tolist(), abs=1e-6)
    assert all(r["label_keras"] in ("Healthy", "Unhealthy") for r in rows)
    from artery_edge.edge.classifier import Classifier

    device = Classifier(models["int8"])  # the device decides each file as evaluate did
    data_dir = load_run(run.run_dir).data_dir
    assert [device.predict(data_dir / r["file"]).label for r in rows] == [r["label_int8"] for r in rows]
    card = (out / "MODEL_CARD.md").read_text()
    for needle in ("Research tool, not a diagnostic device", "## Training data", "## Limitations", "sha256",
                   "stratified random split", "expected calibration error", "At a prevalence of 0.2", "model_int8.tflite"):
        assert needle in card, needle
    assert (out / "reliability.png").stat().st_size > 0


@pytest.mark.parametrize("value", ["0", "1.5", "1"])
def test_prevalence_must_be_a_proportion(converted_run, value):
    run, _ = converted_run
    result = runner.invoke(app, ["evaluate", "--run", str(run.run_dir), "--prevalence", value])
    assert result.exit_code == 2 and "--prevalence must lie in (0, 1)" in result.output


# the threshold given is the one the card names; every decision positive (NPV undefined) is no crash
def test_a_given_threshold_is_what_the_card_says_and_reproduces(converted_run, tmp_path):
    import re
    import shlex

    run, models = converted_run
    out = tmp_path / "e"
    result = runner.invoke(app, ["evaluate", "--run", str(run.run_dir), "--models", str(models["float32"]),
                                 "--threshold", "0", "--prevalence", "0.2", "--bootstrap", "10", "--out", str(out),
                                 "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["models"]["keras"]["threshold"] == 0 and report["threshold_source"] == "--threshold"
    card = (out / "MODEL_CARD.md").read_text()
    assert "every model at threshold 0 on p(Unhealthy), given as `--threshold`" in card and "NPV n/a" in card
    words = shlex.split(re.search(r"Reproduce: `(.*)`", card).group(1))
    assert words[words.index("--threshold") + 1] == "0.0" and words[words.index("--bootstrap") + 1] == "10"
    assert words[words.index("--models") + 1] == str(models["float32"])


def test_threshold_and_target_sensitivity_together_are_refused(converted_run):
    run, _ = converted_run
    result = runner.invoke(app, ["evaluate", "--run", str(run.run_dir), "--threshold", "0.3",
                                 "--target-sensitivity", "0.9"])
    assert result.exit_code == 2 and "give one of them" in result.output


def test_operating_point_reaches_the_target_on_validation(converted_run, tmp_path):
    run, models = converted_run
    result = runner.invoke(app, ["evaluate", "--run", str(run.run_dir), "--models", str(models["float32"]),
                                 "--target-sensitivity", "0.95", "--bootstrap", "10", "--out", str(tmp_path / "e"), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["target_sensitivity"] == 0.95
    assert report["models"]["keras"]["threshold"] == pytest.approx(report["models"]["float32"]["threshold"], abs=1e-4)


def test_sensitivity_threshold():
    labels = np.array([1, 1, 1, 1, 0, 0])
    scores = np.array([0.9, 0.7, 0.4, 0.2, 0.5, 0.1])
    assert sensitivity_threshold(labels, scores, 1, 0.5) == 0.7
    assert sensitivity_threshold(labels, scores, 1, 0.75) == 0.4
    assert sensitivity_threshold(labels, scores, 1, 1.0) == 0.2


@pytest.mark.parametrize("case, message", [
    ("no_split", "split.csv is missing"), ("wrong_classes", "differ from the model"), ("missing_model", "does not exist"),
    ("foreign_model", "does not belong to the run"),
])
def test_bad_inputs(converted_run, tmp_path, case, message):
    run, _ = converted_run
    run_dir = tmp_path / "run"
    shutil.copytree(run.run_dir, run_dir, ignore=shutil.ignore_patterns("*.tflite", "evaluation*"))
    args = ["evaluate", "--run", str(run_dir), "--bootstrap", "5"]
    if case == "no_split":
        (run_dir / "split.csv").unlink()
    elif case == "wrong_classes":
        for name in ("Cats", "Dogs", "Birds"):
            (tmp_path / "other" / name).mkdir(parents=True)
            for i in range(3):
                Image.new("RGB", (20, 20), (i, i, i)).save(tmp_path / "other" / name / f"{i}.png")
        args += ["--data", str(tmp_path / "other")]
    elif case == "foreign_model":  # the run's classes and size, converted from another model.keras
        from artery_edge.edge.metadata import ModelMetadata
        from tests.tflite_builder import build_tiny_classifier

        from artery_edge.trainer.runs import load_run

        trained = load_run(run.run_dir)
        foreign = build_tiny_classifier(tmp_path / "foreign.tflite", size=trained.image_size, metadata=ModelMetadata(
            labels=trained.class_names, input_size=trained.image_size, precision="float32", model_sha256="b" * 64))
        args += ["--models", str(foreign), "--out", str(tmp_path / "e")]
    else:
        args += ["--models", str(tmp_path / "absent.tflite")]
    result = runner.invoke(app, args)
    assert result.exit_code != 0
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], result.output
