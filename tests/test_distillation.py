"""Distillation (`train --teacher RUN ...`): the targets a student learns from, the loss on
them, what the run records, and bad teachers refused before any run folder exists."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorflow", reason="TensorFlow not installed (train extra)")

from artery_edge.edge.metadata import sha256_of_file  # noqa: E402
from artery_edge.trainer.config import ConfigError, TrainConfig  # noqa: E402
from artery_edge.trainer.distillation import TARGETS_FILE, mixed_targets, teacher_targets  # noqa: E402
from artery_edge.trainer.samples import DataError  # noqa: E402
from artery_edge.trainer.training import train  # noqa: E402


def student_config(data: Path, out: Path, teachers: list[Path], **changes) -> TrainConfig:
    return TrainConfig(**{**dict(data_dirs=[str(data)], output_dir=str(out), image_size=32, alpha=0.35,
                                 weights="none", batch_size=16, epochs=1, fine_tune_epochs=1, tensorboard=False,
                                 sample_grid_size=0, teachers=[str(t) for t in teachers], teacher_weight=0.7,
                                 label_smoothing=0.05), **changes})


def test_mixed_targets_are_distributions_between_label_and_teacher():
    teacher = np.array([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5]], np.float32)
    labels = np.array([1, 1, 0])
    mixed = mixed_targets(labels, teacher, 0.25)
    np.testing.assert_allclose(mixed.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(mixed[0], [0.75 * 0 + 0.25 * 0.9, 0.75 * 1 + 0.25 * 0.1], atol=1e-6)
    np.testing.assert_allclose(mixed_targets(labels, teacher, 1.0), teacher)


def test_the_loss_takes_target_distributions_as_well_as_labels():
    """With (batch, classes) targets the loss is the smoothed cross-entropy against them; with integer
    labels it is unchanged (validation and old runs)."""
    from artery_edge.trainer.model import SmoothedSparseCrossentropy

    predicted = np.array([[0.7, 0.3], [0.1, 0.9]], np.float32)
    targets = np.array([[0.6, 0.4], [0.2, 0.8]], np.float32)
    smoothing = 0.05
    smoothed = targets * (1 - smoothing) + smoothing / 2
    expected = float(np.mean(-(smoothed * np.log(predicted)).sum(axis=1)))
    loss = SmoothedSparseCrossentropy(smoothing)
    assert float(loss(targets, predicted)) == pytest.approx(expected, rel=1e-5)
    labels = np.array([0, 1])
    one_hot = np.eye(2, dtype=np.float32)[labels]
    assert float(loss(labels, predicted)) == pytest.approx(float(loss(one_hot, predicted)), rel=1e-6)


@pytest.fixture(scope="module")
def student(trained_run, synthetic_dir, tmp_path_factory):
    """A 32 px student taught by the session's 48 px run (teachers may have another input size)."""
    out = tmp_path_factory.mktemp("student")
    return train(student_config(synthetic_dir, out, [trained_run.run_dir]), log=lambda m: None, verbose=0)


def test_the_student_learns_from_the_teachers_calibrated_probabilities(student, trained_run):
    from artery_edge.trainer.predict import KerasPredictor
    from artery_edge.trainer.runs import load_run

    run = load_run(student.run_dir)
    train_files = [s.path for s in run.split() if s.subset == "train"]
    with np.load(student.run_dir / TARGETS_FILE) as stored:
        assert list(stored["files"]) == [str(f) for f in train_files]
        expected = KerasPredictor.from_run(trained_run.run_dir).probabilities(train_files)
        np.testing.assert_allclose(stored["probabilities"], expected, atol=1e-5)
    record = json.loads((student.run_dir / "run.json").read_text())["teachers"]
    assert record["weight"] == 0.7
    assert [t["model_sha256"] for t in record["runs"]] == [sha256_of_file(trained_run.run_dir / "model.keras")]
    assert student.metrics["threshold"] is not None  # the operating point is chosen as in any run
    assert run.config.teachers == [str(trained_run.run_dir.resolve())]  # resumable from any folder


def test_the_model_card_says_the_model_was_distilled(student, trained_run):
    from artery_edge.evaluation.model_card import model_details
    from artery_edge.trainer.runs import load_run

    details = "\n".join(model_details({"positive_class": "Unhealthy", "calibration": {"temperature": 1.0}},
                                      load_run(student.run_dir)))
    assert f"Distilled from 1 run(s) (`{trained_run.run_dir.name}`)" in details
    assert "0.3 x the label + 0.7 x their ensemble" in details


def test_stored_targets_are_reused_for_the_same_files_and_teachers(student, trained_run, monkeypatch):
    """A resumed run reads the teachers' targets back instead of predicting again."""
    import artery_edge.trainer.distillation as distillation
    from artery_edge.trainer.runs import load_run

    run = load_run(student.run_dir)
    train = [s for s in run.split() if s.subset == "train"]
    def predict_again(*args, **kwargs):
        raise RuntimeError("predicted again")

    monkeypatch.setattr(distillation, "ensemble_probabilities", predict_again)
    again = teacher_targets(student.run_dir, train, [load_run(trained_run.run_dir)])
    assert again.shape == (len(train), 2)
    with pytest.raises(RuntimeError, match="predicted again"):  # other files: predicted afresh
        teacher_targets(student.run_dir, train[:-1], [load_run(trained_run.run_dir)])


@pytest.mark.parametrize("problem", ["not a run", "twice", "weight"])
def test_bad_teachers_are_refused_before_the_run_exists(problem, trained_run, synthetic_dir, tmp_path):
    out = tmp_path / "runs"
    teachers = {"not a run": [tmp_path], "twice": [trained_run.run_dir] * 2}.get(problem, [trained_run.run_dir])
    changes = {"teacher_weight": 0.0} if problem == "weight" else {}
    with pytest.raises(ConfigError, match="teacher"):
        train(student_config(synthetic_dir, out, teachers, **changes), log=lambda m: None, verbose=0)
    assert not out.exists()


def test_a_teacher_of_other_classes_is_refused(trained_run, synthetic_dir, tmp_path):
    data = tmp_path / "other"
    for new, old in (("Calcified", "Healthy"), ("Occluded", "Unhealthy")):
        shutil.copytree(synthetic_dir / old, data / new)
    out = tmp_path / "runs"
    with pytest.raises(DataError, match="same classes"):
        train(student_config(data, out, [trained_run.run_dir]), log=lambda m: None, verbose=0)
    assert not out.exists()
