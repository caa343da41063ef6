"""Evaluate the Keras model and each TFLite variant on the same image files, side by side.

Each model goes through its own real pipeline from the files: Keras through the
trainer's tf.data loading, TFLite through ``edge.Classifier``. Metrics carry bootstrap
95% intervals; each TFLite variant is also compared with Keras image by image.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from edge.precisions import model_files, precision_of_file
from trainer.data import DataError, Sample, print_progress, readable, scan_dataset, subset
from trainer.metrics import binary_metrics, confusion_matrix
from trainer.runs import TrainedRun, load_run
from trainer.training import positive_index

KERAS = "keras"


@dataclass
class Scores:
    """One model's class probabilities for every evaluated file."""

    name: str
    probabilities: np.ndarray
    threshold: float


def load_keras(run: TrainedRun, logits: bool = False):
    """The run's serving graph with its calibration temperature, as ``convert`` exports it
    (``logits=True``: before the softmax)."""
    import keras

    from trainer.model import serving_model

    return serving_model(keras.models.load_model(run.model_path, compile=False), run.temperature, logits)


def load_classifier(model_path: Path, labels: Sequence[str]):
    """An ``edge.Classifier`` whose labels are checked against the run's, before any work."""
    from edge.classifier import Classifier

    classifier = Classifier(model_path)
    if classifier.labels != list(labels):
        raise DataError(f"{model_path}: labels {classifier.labels} differ from the run's {list(labels)}")
    return classifier


def keras_probabilities(model, image_size: int, samples: Sequence[Sample], batch_size: int = 64) -> np.ndarray:
    """Through the trainer's own tf.data pipeline (same decode and resize as training)."""
    from trainer.data import make_dataset

    dataset = make_dataset(samples, image_size, batch_size)
    return np.asarray(model.predict(dataset, verbose=2 if not sys.stderr.isatty() else 1))


def tflite_probabilities(classifier, samples: Sequence[Sample]) -> np.ndarray:
    """Through the device runtime, one file at a time as a device would."""
    progress = print_progress(classifier.model_path.name)
    rows = []
    for done, sample in enumerate(samples, 1):
        prediction = classifier.predict(sample.path)
        rows.append([prediction.probabilities[label] for label in classifier.labels])
        progress(done, len(samples))
    return np.array(rows, dtype=np.float64)


def decide(probabilities: np.ndarray, positive: int, threshold: float) -> np.ndarray:
    """Binary: positive iff p >= threshold; otherwise arg-max of the remaining classes."""
    others = probabilities.copy()
    others[:, positive] = -np.inf
    return np.where(probabilities[:, positive] >= threshold, positive, others.argmax(axis=1))


def threshold_for_sensitivity(labels: np.ndarray, positive_scores: np.ndarray, positive: int, target: float) -> float:
    """The highest threshold whose sensitivity on these labels reaches ``target``."""
    scores = np.sort(positive_scores[labels == positive])[::-1]
    if len(scores) == 0:
        raise DataError("no positive images to set an operating point on")
    needed = int(np.ceil(target * len(scores)))
    return float(scores[max(needed, 1) - 1])


def bootstrap_intervals(labels, scores, predicted, positive, rounds=1000, seed=0) -> dict[str, list[float]]:
    """Percentile 95% intervals of every binary metric over ``rounds`` resamples of the images."""
    rng = np.random.default_rng(seed)
    samples: dict[str, list[float]] = {}
    for _ in range(rounds):
        idx = rng.integers(0, len(labels), len(labels))
        for key, value in binary_metrics(labels[idx], scores[idx], predicted[idx], positive).items():
            if value is not None:
                samples.setdefault(key, []).append(value)
    return {key: [float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))] for key, v in samples.items()}


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
    from trainer.calibration import expected_calibration_error, reliability

    predicted = decide(scores.probabilities, positive, scores.threshold)
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
    ref_labels = decide(reference.probabilities, positive, reference.threshold)
    other_labels = decide(other.probabilities, positive, other.threshold)
    diff = np.abs(reference.probabilities[:, positive] - other.probabilities[:, positive])
    return {
        "label_agreement": float((ref_labels == other_labels).mean()),
        "mean_abs_diff": float(diff.mean()),
        "max_abs_diff": float(diff.max()),
    }


def evaluation_dir(base: Path) -> Path:
    """``base`` if new, else ``base-2``, ``base-3``...: earlier evaluations are kept."""
    for attempt in range(1, 1000):
        candidate = base if attempt == 1 else base.with_name(f"{base.name}-{attempt}")
        try:
            candidate.mkdir(parents=True)
            return candidate
        except FileExistsError:
            continue
    raise RuntimeError(f"cannot create an evaluation folder next to {base}")


def readable_subset(run: TrainedRun, name: str) -> tuple[list[Sample], list[str]]:
    """One subset of the run's split, unreadable files left out and named."""
    return readable(subset(run.split(), name), print_progress(f"checking {name} images"))


def evaluation_samples(run: TrainedRun, data_dir: Optional[Path]) -> tuple[list[Sample], list[str], str]:
    """The files to evaluate, the unreadable ones skipped (with one message each), and a description."""
    if data_dir is None:
        return (*readable_subset(run, "test"), "test split of the run")
    scanned = scan_dataset(Path(data_dir), progress=print_progress("checking images"))
    if scanned.class_names != run.class_names:
        raise DataError(f"{data_dir}: classes {scanned.class_names} differ from the model's {run.class_names}")
    return scanned.samples, scanned.skipped, f"all images in {data_dir}"


def evaluate(
    run_dir: Path,
    models: Optional[Sequence[Path]] = None,
    data_dir: Optional[Path] = None,
    threshold: Optional[float] = None,
    target_sensitivity: Optional[float] = None,
    bootstrap_rounds: int = 1000,
    out_dir: Optional[Path] = None,
    prevalence: Optional[float] = None,
) -> tuple[dict, Path]:
    """Evaluate and write metrics.json, report.md, predictions.csv, MODEL_CARD.md and the plots;
    return the report and its folder. ``threshold`` None: each model decides at its stored
    operating point (the run's, chosen on validation; 0.5 for a model without one)."""
    from trainer.calibration import expected_calibration_error, softmax

    if prevalence is not None and not 0 < prevalence < 1:
        raise DataError(f"--prevalence must lie strictly between 0 and 1, found {prevalence}")
    run = load_run(run_dir)
    if models is None:
        models = model_files(run.run_dir)
    for model in models:
        if not Path(model).is_file():
            raise DataError(f"model file {model} does not exist")
    samples, skipped, description = evaluation_samples(run, data_dir)
    for message in skipped:
        print(f"warning: skipping {message}", file=sys.stderr)
    if not samples:
        raise DataError("nothing to evaluate: no readable images")
    labels = np.array([s.label for s in samples])
    positive = positive_index(run.class_names)
    names = [KERAS] + [precision_of_file(m) for m in models]

    classifiers = [load_classifier(Path(m), run.class_names) for m in models]
    keras_logits_model = load_keras(run, logits=True)

    def score_all(files: Sequence[Sample]) -> tuple[np.ndarray, list[np.ndarray]]:
        """Keras' logits, and the probabilities of Keras with the run's temperature (as exported)
        and of each TFLite file."""
        logits = keras_probabilities(keras_logits_model, run.image_size, files)
        return logits, [softmax(logits, run.temperature)] + [tflite_probabilities(c, files) for c in classifiers]

    stored = [run.threshold] + [c.threshold for c in classifiers]
    thresholds = [threshold if threshold is not None else 0.5 if t is None else t for t in stored]
    operating_point = ("--threshold" if threshold is not None else
                       run.config.get("operating_point", "argmax") if run.threshold is not None else "argmax")
    if target_sensitivity is not None:
        validation, _ = readable_subset(run, "validation")
        val_labels = np.array([s.label for s in validation])
        thresholds = [threshold_for_sensitivity(val_labels, p[:, positive], positive, target_sensitivity)
                      for p in score_all(validation)[1]]
    keras_logits, probabilities = score_all(samples)
    scores = [Scores(n, p, t) for n, p, t in zip(names, probabilities, thresholds)]

    report = {
        "run_dir": str(run.run_dir),
        "evaluated_on": description,
        "n": int(len(labels)),
        "skipped": skipped,
        "class_counts": {name: int((labels == i).sum()) for i, name in enumerate(run.class_names)},
        "class_names": run.class_names,
        "positive_class": run.class_names[positive],
        "target_sensitivity": target_sensitivity,
        "operating_point": f"sensitivity={target_sensitivity} on validation" if target_sensitivity else operating_point,
        "bootstrap_rounds": bootstrap_rounds,
        "models": {s.name: model_report(s, labels, positive, len(run.class_names), bootstrap_rounds, prevalence)
                   for s in scores},
        "agreement_with_keras": {s.name: agreement(scores[0], s, positive) for s in scores[1:]},
        "conversion": {name: (c.metadata.quantization if c.metadata else {}) for name, c in zip(names[1:], classifiers)},
        "calibration": {
            "temperature": run.temperature,
            "keras_ece_uncalibrated": expected_calibration_error(softmax(keras_logits), labels),
            "tflite_temperatures": {name: (c.metadata.temperature if c.metadata else None)
                                    for name, c in zip(names[1:], classifiers)},
        },
        "prevalence": prevalence,
    }
    folder = evaluation_dir(Path(out_dir) if out_dir else run.run_dir / "evaluation")
    (folder / "metrics.json").write_text(json.dumps(report, indent=2))
    np.savez_compressed(folder / "probabilities.npz", files=np.array([str(s.path) for s in samples]),
                        labels=labels, **{s.name: s.probabilities for s in scores})
    from evaluation.model_card import write_model_card
    from evaluation.report import write_markdown, write_plots, write_predictions

    write_predictions(folder / "predictions.csv", samples, run, scores, positive)
    write_plots(report, scores, labels, positive, folder)
    write_markdown(report, folder / "report.md")
    write_model_card(folder / "MODEL_CARD.md", report, run, [Path(m) for m in models])
    return report, folder
