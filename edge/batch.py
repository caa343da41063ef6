"""Classify many files: expand folders, keep going past bad files, report each outcome."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Optional, Sequence

from artery_edge.edge.classifier import Classifier, Prediction
from artery_edge.edge.dicom import is_dicom, open_dicom
from artery_edge.edge.errors import ImageError, PredictionError
from artery_edge.edge.imaging import display_path, iter_image_files


@dataclass
class FileResult:
    path: Path
    prediction: Optional[Prediction] = None
    error: Optional[str] = None
    true_label: Optional[str] = None  # the parent folder's name, when it is one of the model's labels
    frame: Optional[int] = None  # a DICOM file's frame (from 1)
    uid: Optional[str] = None  # a DICOM file's SOP Instance UID: with the path, all that names it
    notes: tuple[str, ...] = ()  # said once per file (a DICOM frame windowed from its own range)

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
    classifier: Classifier, paths: Iterable[Path], threshold: Optional[float] = None,
    frames: Optional[Sequence[int]] = None,
) -> Iterator[FileResult]:
    """One result per file (per frame of a DICOM cine); an unreadable file becomes an error entry,
    not an exception. A file inside a class folder (``Healthy/x.png``) also carries that true class."""
    for path in paths:
        true_label = Path(path).parent.name if Path(path).parent.name in classifier.labels else None
        try:
            yield from classify_path(classifier, Path(path), threshold, frames, true_label)
        except (ImageError, PredictionError) as exc:
            yield FileResult(path, error=str(exc), true_label=true_label)


def classify_path(classifier: Classifier, path: Path, threshold: Optional[float] = None,
                  frames: Optional[Sequence[int]] = None, true_label: Optional[str] = None) -> Iterator[FileResult]:
    """An image's result, or a DICOM file's, one per frame (a cine's ``frames`` only, when given);
    raises ImageError / PredictionError."""
    if not is_dicom(path):
        prediction = classifier.predict(path, threshold)
        yield FileResult(path, prediction=prediction, true_label=true_label,
                         notes=(prediction.size_note,) if prediction.size_note else ())
        return
    dicom = open_dicom(path)
    notes = dicom.notes
    for number, gray in dicom.read(frames if dicom.frames > 1 else None):
        yield FileResult(path, classifier.predict(gray, threshold), true_label=true_label, frame=number,
                         uid=dicom.uid, notes=notes)
        notes = ()


def result_row(result: FileResult, labels: Sequence[str]) -> dict:
    """One file's row of ``infer --json`` / ``--csv`` and of ``serve``'s ``POST /v1/predict``:
    one schema, written here only (an error row has the model's ``p_*`` keys too, as None)."""
    p = result.prediction
    return {"file": display_path(result.path), "frame": result.frame, "sop_instance_uid": result.uid,
            "label": p.label if p else None,
            **{f"p_{label}": p.probabilities[label] if p else None for label in labels},
            "inference_ms": round(p.inference_ms, 3) if p else None,
            "true_label": result.true_label, "size_note": p.size_note if p else None, "error": result.error}


def results_document(classifier: Classifier, threshold: Optional[float], rows: list[dict], failed: int,
                     problems: list[str], notes: Sequence[str] = ()) -> dict:
    """The whole ``infer --json`` document (``serve`` answers an upload with the same one); ``notes``
    (how a DICOM file was windowed) only when there are some."""
    document = {"model": str(classifier.model_path), "backend": classifier.backend,
                "threshold": threshold if threshold is not None else classifier.threshold,
                "results": rows, "failed": failed, "problems": problems, **({"notes": list(notes)} if notes else {})}
    return {**document, "warning": classifier.warning} if classifier.warning else document
