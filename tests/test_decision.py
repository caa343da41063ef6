"""One decision rule (edge.decision.decide): the device, training, prediction and evaluation
decide identically on the same probabilities, two classes and three, ties included."""

from __future__ import annotations

import numpy as np
import pytest

from artery_edge.edge.decision import POSITIVE_LABEL, decide, positive_index

# rows: clear cases, p(positive) exactly at a threshold, ties between the other classes
THREE = np.array([[0.2, 0.3, 0.5], [0.6, 0.1, 0.3], [0.4, 0.4, 0.2], [0.1, 0.5, 0.4], [0.3, 0.3, 0.4],
                  [0.45, 0.1, 0.45], [0.0, 0.0, 1.0], [0.35, 0.35, 0.3]])
TWO = np.array([[0.7, 0.3], [0.5, 0.5], [0.2, 0.8], [0.6, 0.4], [0.99, 0.01], [0.45, 0.55]])
CASES = [(["Healthy", "Moderate", "Unhealthy"], THREE), (["Healthy", "Unhealthy"], TWO),
         (["Unhealthy", "Healthy"], TWO)]
THRESHOLDS = [None, 0.3, 0.4, 0.5, 0.05]


def rule(row: np.ndarray, threshold, positive: int) -> int:
    """The rule in words: positive iff p >= threshold, else the likeliest other class (first on
    a tie); arg-max without a threshold."""
    if threshold is None:
        return int(np.argmax(row))
    if row[positive] >= threshold:
        return positive
    others = [i for i in range(len(row)) if i != positive]
    return max(others, key=lambda i: row[i])


def expected(names, probabilities, threshold) -> list[int]:
    return [rule(row, threshold, positive_index(names)) for row in probabilities]


def test_the_positive_class_is_unhealthy_else_the_metadata_s_else_the_last():
    assert POSITIVE_LABEL == "Unhealthy"
    assert positive_index(["Unhealthy", "Healthy"]) == 0
    assert positive_index(["no", "yes"]) == 1
    assert positive_index(["a", "b", "c"], positive_label="b") == 1
    assert positive_index(["Healthy", "Unhealthy"], positive_label="absent") == 1


@pytest.mark.parametrize("names, probabilities", CASES)
@pytest.mark.parametrize("threshold", THRESHOLDS)
def test_the_rule_batched_and_row_by_row(names, probabilities, threshold):
    positive = positive_index(names)
    assert decide(probabilities, threshold, positive).tolist() == expected(names, probabilities, threshold)
    assert [int(decide(row, threshold, positive)) for row in probabilities] == expected(names, probabilities, threshold)


class StandIn:
    """What ``Classifier.decide`` reads of a loaded model (its labels and stored threshold)."""

    def __init__(self, names, threshold):
        self.labels, self.positive_label, self.threshold = list(names), names[positive_index(names)], threshold


@pytest.mark.parametrize("names, probabilities", CASES)
@pytest.mark.parametrize("threshold", THRESHOLDS)
def test_the_device_decides_by_the_rule(names, probabilities, threshold):
    from artery_edge.edge.classifier import Classifier

    stored = [Classifier.decide(StandIn(names, threshold), row) for row in probabilities]
    explicit = [Classifier.decide(StandIn(names, None), row, threshold) for row in probabilities]
    assert stored == explicit == expected(names, probabilities, threshold)


def test_a_real_model_s_stored_threshold_decides(tmp_path):
    from artery_edge.edge import Classifier, ModelMetadata
    from tests.tflite_builder import build_tiny_classifier

    meta = ModelMetadata(labels=["Healthy", "Unhealthy"], input_size=8, precision="float32",
                         positive_label="Unhealthy", threshold=0.4)
    classifier = Classifier(build_tiny_classifier(tmp_path / "m.tflite", "float32", metadata=meta))
    assert [classifier.decide(row) for row in TWO] == expected(["Healthy", "Unhealthy"], TWO, 0.4)


@pytest.mark.parametrize("names, probabilities", CASES)
@pytest.mark.parametrize("threshold", THRESHOLDS)
def test_training_decides_by_the_rule(names, probabilities, threshold):
    pytest.importorskip("sklearn", reason="scikit-learn not installed (train extra)")
    from artery_edge.trainer.training import test_metrics

    decided = []
    for row in probabilities:  # one image at a time: its confusion matrix row 0 names its class
        matrix = np.array(test_metrics(row[np.newaxis], np.array([0]), names, 0.0, threshold)["confusion_matrix"])
        decided.append(int(np.flatnonzero(matrix[0])[0]))
    assert decided == expected(names, probabilities, threshold)


@pytest.mark.parametrize("names, probabilities", CASES)
@pytest.mark.parametrize("threshold", THRESHOLDS)
def test_keras_prediction_decides_by_the_rule(names, probabilities, threshold):
    pytest.importorskip("sklearn", reason="scikit-learn not installed (train extra)")
    from artery_edge.trainer.predict import KerasPredictor

    predictor = KerasPredictor.__new__(KerasPredictor)  # a stand-in model instead of a model.keras file
    predictor.class_names, predictor.image_size, predictor.threshold = names, 8, threshold
    pixels = np.zeros((8, 8, 3), np.uint8)
    decided = []
    for row in probabilities:
        predictor.model = lambda batch, training=False, row=row: row[np.newaxis]
        decided.append(names.index(predictor.predict(pixels).label))
    assert decided == expected(names, probabilities, threshold)
    predictor.model = lambda batch, training=False: np.asarray(probabilities)[: len(batch)]  # one batch: all rows
    labels = predictor.labels([pixels] * len(probabilities), batch_size=len(probabilities))
    assert [names.index(label) for label in labels] == expected(names, probabilities, threshold)


@pytest.mark.parametrize("names, probabilities", CASES)
@pytest.mark.parametrize("threshold", THRESHOLDS)
def test_evaluation_decides_by_the_rule_and_reports_those_decisions(names, probabilities, threshold):
    pytest.importorskip("scipy", reason="SciPy not installed (train extra)")
    pytest.importorskip("sklearn", reason="scikit-learn not installed (train extra)")
    from artery_edge.evaluation.evaluate import Scores, agreement

    positive = positive_index(names)
    scores = Scores.decided("int8", probabilities, threshold, positive)
    assert scores.predicted.tolist() == expected(names, probabilities, threshold)
    keras = Scores.decided("keras", probabilities, None, positive)
    same = np.mean(np.array(expected(names, probabilities, None)) == expected(names, probabilities, threshold))
    assert agreement(keras, scores, positive)["label_agreement"] == same


def test_the_report_writes_the_evaluation_s_decisions_and_makes_none_itself(tmp_path):
    """predictions.csv shows ``Scores.predicted`` as evaluate made it, even where the probabilities
    alone would say otherwise."""
    pytest.importorskip("scipy", reason="SciPy not installed (train extra)")
    pytest.importorskip("sklearn", reason="scikit-learn not installed (train extra)")
    pytest.importorskip("matplotlib", reason="matplotlib not installed (train extra)")
    import csv
    from types import SimpleNamespace

    from artery_edge.evaluation.evaluate import Scores
    from artery_edge.evaluation.report import write_predictions

    names = ["Healthy", "Unhealthy"]
    run = SimpleNamespace(class_names=names, data_dir=tmp_path)
    samples = [SimpleNamespace(path=tmp_path / f"{i}.png", label=0) for i in range(len(TWO))]
    made = np.array([1, 0, 1, 0, 1, 0])  # not what any threshold gives on TWO: only evaluate's record counts
    write_predictions(tmp_path / "p.csv", samples, run, [Scores("int8", TWO, 0.5, made)], positive=1)
    rows = list(csv.DictReader(open(tmp_path / "p.csv")))
    assert [names.index(r["label_int8"]) for r in rows] == made.tolist()
