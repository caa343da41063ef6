"""Classify many files: expand folders, keep going past bad files, report each outcome."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Optional

from edge.classifier import Classifier, Prediction
from edge.errors import ImageError, PredictionError
from edge.imaging import display_path, iter_image_files


@dataclass
class FileResult:
    path: Path
    prediction: Optional[Prediction] = None
    error: Optional[str] = None
    true_label: Optional[str] = None  # the parent folder's name, when it is one of the model's labels

    @property
    def correct(self) -> Optional[bool]:
        if self.true_label is None or self.prediction is None:
            return None
        return self.prediction.label == self.true_label


def expand_inputs(paths: Iterable[Path]) -> tuple[list[Path], list[str]]:
    """Files as given, folders expanded recursively to their image files (sorted), each file once
    (by absolute path: the first mention wins); also one message per subfolder that could not be listed."""
    expanded: list[Path] = []
    problems: list[str] = []
    seen: set[Path] = set()
    for path in paths:
        path = Path(path)
        for found in iter_image_files(path, problems) if path.is_dir() else [path]:
            key = Path(os.path.abspath(found))  # a file reached twice (given twice, or inside a given folder) once
            if key not in seen:
                seen.add(key)
                expanded.append(found)
    return expanded, problems


def classify_files(
    classifier: Classifier, paths: Iterable[Path], threshold: Optional[float] = None
) -> Iterator[FileResult]:
    """One result per file; an unreadable image becomes an error entry, not an exception.
    A file inside a class folder (``Healthy/x.png``) also carries that true class."""
    for path in paths:
        true_label = Path(path).parent.name if Path(path).parent.name in classifier.labels else None
        try:
            yield FileResult(path, prediction=classifier.predict(path, threshold), true_label=true_label)
        except (ImageError, PredictionError) as exc:
            yield FileResult(path, error=str(exc), true_label=true_label)


def result_row(result: FileResult) -> dict:
    """One file's row of ``infer --json`` / ``--csv`` and of ``serve``'s ``POST /v1/predict``:
    one schema, written here only."""
    p = result.prediction
    return {"file": display_path(result.path), "label": p.label if p else None,
            **{f"p_{k}": v for k, v in (p.probabilities if p else {}).items()},
            "inference_ms": round(p.inference_ms, 3) if p else None,
            "true_label": result.true_label, "error": result.error}


def results_document(classifier: Classifier, threshold: Optional[float], rows: list[dict], failed: int,
                     problems: list[str]) -> dict:
    """The whole ``infer --json`` document (``serve`` answers an upload with the same one)."""
    document = {"model": str(classifier.model_path), "backend": classifier.backend,
                "threshold": threshold if threshold is not None else classifier.threshold,
                "results": rows, "failed": failed, "problems": problems}
    return {**document, "warning": classifier.warning} if classifier.warning else document
