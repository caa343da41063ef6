"""Evaluate the Keras model and each TFLite variant on the same image files, side by side.

Each model goes through its own real pipeline from the files: Keras through the
trainer's tf.data loading, TFLite through ``edge.Classifier``. Metrics carry bootstrap
95% intervals; each TFLite variant is also compared with Keras image by image. This module
measures only; ``evaluation.report.write_evaluation`` turns the result into files.
"""

from __future__ import annotations

import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from artery_edge.edge.decision import decide
from artery_edge.edge.precisions import model_files, precision_of_file
from artery_edge.edge.progress import progress_bar
from artery_edge.edge.provenance import RunIdentity, check_tflite
from artery_edge.edge.text import terminal
from artery_edge.evaluation.options import EvaluateOptions
from artery_edge.trainer.metrics import binary_metrics, confusion_matrix
from artery_edge.trainer.runs import TrainedRun, load_run
from artery_edge.trainer.samples import DataError, Sample, subset
from artery_edge.trainer.scan import readable, scan_dataset

KERAS = "keras"


@dataclass
class Scores:
    """One model's class probabilities for every evaluated file, and its decisions on them
    (made once, here; the report reads them)."""

    name: str
    probabilities: np.ndarray
    threshold: Optional[float]  # None: arg-max
    predicted: np.ndarray

    @classmethod
    def decided(cls, name: str, probabilities: np.ndarray, threshold: Optional[float], positive: int) -> "Scores":
        """Scores with ``edge.decision.decide``'s decisions at ``threshold``."""
        return cls(name, probabilities, threshold, decide(probabilities, threshold, positive))


@dataclass
class Evaluation:
    """What ``evaluate`` measured: ``report`` is metrics.json; the rest feeds the report's files."""

    report: dict
    run: TrainedRun
    samples: list[Sample]
    labels: np.ndarray
    scores: list[Scores]
    model_files: list[Path]
    positive: int


def load_keras(run: TrainedRun, logits: bool = False):
    """The run's serving graph with its calibration temperature, as ``convert`` exports it
    (``logits=True``: before the softmax)."""
    from artery_edge.trainer.model import serving_model

    return serving_model(run.keras_model(), run.temperature, logits)


def load_classifier(model_path: Path, run: RunIdentity):
    """An ``edge.Classifier`` for a .tflite converted from ``run``'s model (classes, input size and
    source digest checked by ``edge.provenance``), before any work."""
    from artery_edge.edge.classifier import Classifier

    classifier = Classifier(model_path)
    check_tflite(Path(model_path), classifier.metadata, run)
    return classifier


def model_names(models: Sequence[Path]) -> list[str]:
    """``keras``, then each file's precision (the registry's file name -> its precision, else its stem);
    a name taken already gets ``-2``, ``-3``..., so two files never share a column or a plot."""
    names = [KERAS]
    for model in models:
        name = base = precision_of_file(model)
        number = 1
        while name in names:
            number += 1
            name = f"{base}-{number}"
        names.append(name)
    return names


def keras_probabilities(model, image_size: int, samples: Sequence[Sample], batch_size: int = 64,
                        quiet: bool = False) -> np.ndarray:
    """Through the trainer's own tf.data pipeline (same decode and resize as training)."""
    from artery_edge.trainer.pipeline import make_dataset

    dataset = make_dataset(samples, image_size, batch_size)
    return np.asarray(model.predict(dataset, verbose=0 if quiet else 1 if sys.stderr.isatty() else 2))


def tflite_probabilities(classifier, samples: Sequence[Sample], quiet: bool = False) -> np.ndarray:
    """Through the device runtime, one file at a time as a device would."""
    rows = []
    with progress_bar(classifier.model_path.name, quiet) as progress:
        for done, sample in enumerate(samples, 1):
            prediction = classifier.predict(sample.path)
            rows.append([prediction.probabilities[label] for label in classifier.labels])
            progress(done, len(samples))
    return np.array(rows, dtype=np.float64)


def sensitivity_threshold(labels: np.ndarray, positive_scores: np.ndarray, positive: int, target: float) -> float:
    """``choose_threshold``'s ``sensitivity=target`` on these labels; no positive image is an error here."""
    from artery_edge.trainer.operating_point import choose_threshold

    if not (labels == positive).any():
        raise DataError("no positive images to set an operating point on")
    return choose_threshold(labels == positive, positive_scores, f"sensitivity={target}")


def bootstrap_intervals(labels, scores, predicted, positive, rounds=1000, seed=0) -> dict[str, list[float]]:
    """Percentile 95% intervals of every binary metric over ``rounds`` resamples of the images
    (``scipy.stats.bootstrap`` draws them). A resample where a metric is undefined (no positive
    drawn, say) is left out of that metric's interval, as SciPy's own interval would be nan."""
    from scipy.stats import DegenerateDataWarning, bootstrap

    if len(labels) < 2:  # one image cannot be resampled into anything new
        return {}
    keys = list(binary_metrics(labels, scores, predicted, positive))

    def statistic(index: np.ndarray, axis: int = -1) -> np.ndarray:
        rows = [binary_metrics(labels[i], scores[i], predicted[i], positive) for i in index.reshape(-1, len(labels))]
        return np.array([[np.nan if r[k] is None else r[k] for r in rows] for k in keys])

    with warnings.catch_warnings():  # SciPy's nan interval, which is not used, warns
        warnings.simplefilter("ignore", DegenerateDataWarning)
        drawn = bootstrap((np.arange(len(labels)),), statistic, n_resamples=rounds, vectorized=True,
                          method="percentile", rng=np.random.default_rng(seed)).bootstrap_distribution
    return {key: [float(np.nanpercentile(values, 2.5)), float(np.nanpercentile(values, 97.5))]
            for key, values in zip(keys, drawn) if not np.isnan(values).all()}


def at_prevalence(sensitivity: Optional[float], specificity: Optional[float], prevalence: float) -> dict:
    """PPV and NPV re-weighted to a stated prevalence (Bayes' rule with the measured sensitivity
    and specificity), for a population whose share of positives differs from the sample's."""
    if sensitivity is None or specificity is None:
        return {"ppv": None, "npv": None}
    true_pos, false_pos = sensitivity * prevalence, (1 - specificity) * (1 - prevalence)
    true_neg, false_neg = specificity * (1 - prevalence), (1 - sensitivity) * prevalence
    return {"ppv": true_pos / (true_pos + false_pos) if true_pos + false_pos else None,
            "npv": true_neg / (true_neg + false_neg) if true_neg + false_neg else None}


def model_report(scores: Scores, labels: np.ndarray, positive: int, n_classes: int, rounds: int,
                 prevalence: Optional[float] = None) -> dict:
    """One model's metrics (with intervals), confusion matrix and calibration."""
    from artery_edge.trainer.calibration import expected_calibration_error, reliability

    predicted = scores.predicted
    positive_scores = scores.probabilities[:, positive]
    metrics = binary_metrics(labels, positive_scores, predicted, positive)
    found = {
        "threshold": scores.threshold,
        "metrics": metrics,
        "ci95": bootstrap_intervals(labels, positive_scores, predicted, positive, rounds),
        "confusion_matrix": confusion_matrix(labels, predicted, n_classes).tolist(),
        "ece": expected_calibration_error(scores.probabilities, labels),
        "reliability": reliability(scores.probabilities, labels),
    }
    if prevalence is not None:
        found["at_prevalence"] = {"prevalence": prevalence,
                                  **at_prevalence(metrics.get("sensitivity"), metrics.get("specificity"), prevalence)}
    return found


def agreement(reference: Scores, other: Scores, positive: int) -> dict:
    """How closely a TFLite variant follows Keras on the same files."""
    diff = np.abs(reference.probabilities[:, positive] - other.probabilities[:, positive])
    return {
        "label_agreement": float((reference.predicted == other.predicted).mean()),
        "mean_abs_diff": float(diff.mean()),
        "max_abs_diff": float(diff.max()),
    }


def readable_subset(run: TrainedRun, name: str, quiet: bool = False) -> tuple[list[Sample], list[str]]:
    """One subset of the run's split, unreadable files left out and named."""
    with progress_bar(f"checking {name} images", quiet) as progress:
        return readable(subset(run.split(), name), progress)


def evaluation_samples(run: TrainedRun, data_dir: Optional[Path], quiet: bool = False
                       ) -> tuple[list[Sample], list[str], str]:
    """The files to evaluate, the unreadable ones skipped (with one message each), and a description."""
    if data_dir is None:
        return (*readable_subset(run, "test", quiet), "test split of the run")
    with progress_bar("checking images", quiet) as progress:
        scanned = scan_dataset(Path(data_dir), progress=progress)
    if scanned.class_names != run.class_names:
        raise DataError(f"{data_dir}: classes {scanned.class_names} differ from the model's {run.class_names}")
    return scanned.samples, scanned.skipped, f"all images in {data_dir}"


class ModelScorer:
    """Keras (the run's serving graph, temperature included) and each TFLite file, scoring the
    same files; Keras' logits are kept for its calibration before the temperature."""

    def __init__(self, run: TrainedRun, models: Sequence[Path], quiet: bool) -> None:
        self.run, self.quiet = run, quiet
        identity = RunIdentity.of(run)
        self.classifiers = [load_classifier(Path(m), identity) for m in models]
        self.names = model_names(models)
        self.keras_logits_model = load_keras(run, logits=True)

    def probabilities(self, samples: Sequence[Sample]) -> tuple[np.ndarray, list[np.ndarray]]:
        """Keras' logits, and every model's probabilities (Keras' with the run's temperature)."""
        from artery_edge.trainer.calibration import softmax

        logits = keras_probabilities(self.keras_logits_model, self.run.image_size, samples, quiet=self.quiet)
        return logits, [softmax(logits, self.run.temperature)] + [
            tflite_probabilities(c, samples, self.quiet) for c in self.classifiers]


@dataclass
class OperatingPoints:
    """Each model's threshold (Keras first; None: arg-max), the rule that set them and where it came from."""

    thresholds: list[Optional[float]]
    rule: str  # "youden", "argmax", "--threshold 0.4", "sensitivity=0.9 on validation"
    source: str  # "stored", "--threshold" or "--target-sensitivity"


def operating_points(scorer: ModelScorer, options: EvaluateOptions, positive: int) -> OperatingPoints:
    """The one place each model's threshold is settled: ``--target-sensitivity`` on the validation
    split, or ``--threshold``, else each model's stored one (the run's record for Keras, each file's
    metadata for the TFLite models). ``EvaluateOptions`` refuses both options at once."""
    run = scorer.run
    if options.target_sensitivity is not None:
        target = options.target_sensitivity
        validation, _ = readable_subset(run, "validation", scorer.quiet)
        labels = np.array([s.label for s in validation])
        return OperatingPoints([sensitivity_threshold(labels, p[:, positive], positive, target)
                                for p in scorer.probabilities(validation)[1]],
                               f"sensitivity={target} on validation", "--target-sensitivity")
    if options.threshold is not None:
        return OperatingPoints([options.threshold] * len(scorer.names), f"--threshold {options.threshold:g}",
                               "--threshold")
    stored = [run.record.threshold] + [c.threshold for c in scorer.classifiers]
    return OperatingPoints(stored, (run.record.operating_point or run.config.operating_point)
                           if run.record.threshold is not None else "argmax", "stored")


def evaluate(run_dir: Path, options: Optional[EvaluateOptions] = None, quiet: bool = False) -> Evaluation:
    """Score the run's Keras model and its TFLite files on the same images; write nothing.

    Args:
        run_dir: a finished training run.
        options: which models and images, how to decide, intervals (checked when built).
        quiet: no progress bars (``--json``).
    """
    options = options or EvaluateOptions()
    data_dir = options.data_dir
    bootstrap_rounds, prevalence = options.bootstrap_rounds, options.prevalence
    run = load_run(run_dir)
    models = list(model_files(run.run_dir) if options.models is None else options.models)
    for model in models:
        if not model.is_file():
            raise DataError(f"model file {model} does not exist")
    samples, skipped, description = evaluation_samples(run, data_dir, quiet)
    for message in skipped:
        print(f"warning: skipping {terminal(message)}", file=sys.stderr)
    if not samples:
        raise DataError("nothing to evaluate: no readable images")
    labels = np.array([s.label for s in samples])
    positive = run.positive
    scorer = ModelScorer(run, models, quiet)
    points = operating_points(scorer, options, positive)
    keras_logits, probabilities = scorer.probabilities(samples)
    scores = [Scores.decided(n, p, t, positive) for n, p, t in zip(scorer.names, probabilities, points.thresholds)]
    report = {
        "run_dir": str(run.run_dir), "evaluated_on": description, "n": int(len(labels)), "skipped": skipped,
        "class_counts": {name: int((labels == i).sum()) for i, name in enumerate(run.class_names)},
        "class_names": run.class_names, "positive_class": run.class_names[positive],
        "target_sensitivity": options.target_sensitivity, "operating_point": points.rule, "threshold_source": points.source,
        "bootstrap_rounds": bootstrap_rounds, "options": options.to_dict(), "reproduce": options.command(run.run_dir),
        "models": {s.name: model_report(s, labels, positive, len(run.class_names), bootstrap_rounds, prevalence)
                   for s in scores},
        "agreement_with_keras": {s.name: agreement(scores[0], s, positive) for s in scores[1:]},
        **conversion_and_calibration(scorer, keras_logits, labels),
        "prevalence": prevalence,
    }
    return Evaluation(report, run, samples, labels, scores, models, positive)


def conversion_and_calibration(scorer: ModelScorer, keras_logits: np.ndarray, labels: np.ndarray) -> dict:
    """What each TFLite file's metadata says about its conversion and temperature, and Keras'
    calibration error before the temperature."""
    from artery_edge.trainer.calibration import expected_calibration_error, softmax

    own = dict(zip(scorer.names[1:], (c.metadata for c in scorer.classifiers)))
    return {
        "conversion": {name: (meta.quantization if meta else {}) for name, meta in own.items()},
        "calibration": {
            "temperature": scorer.run.temperature,
            "keras_ece_uncalibrated": expected_calibration_error(softmax(keras_logits), labels),
            "tflite_temperatures": {name: (meta.temperature if meta else None) for name, meta in own.items()},
        },
    }
