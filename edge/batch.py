"""Classify many files: expand folders, keep going past bad files, report each outcome."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Optional

from edge.classifier import Classifier, Prediction
from edge.errors import ImageError
from edge.imaging import iter_image_files


@dataclass
class FileResult:
    path: Path
    prediction: Optional[Prediction] = None
    error: Optional[str] = None


def expand_inputs(paths: Iterable[Path]) -> list[Path]:
    """Files as given, folders expanded recursively to their image files (sorted)."""
    expanded: list[Path] = []
    for path in paths:
        path = Path(path)
        expanded.extend(iter_image_files(path) if path.is_dir() else [path])
    return expanded


def classify_files(
    classifier: Classifier, paths: Iterable[Path], threshold: Optional[float] = None
) -> Iterator[FileResult]:
    """One result per file; an unreadable image becomes an error entry, not an exception."""
    for path in paths:
        try:
            yield FileResult(path, prediction=classifier.predict(path, threshold))
        except ImageError as exc:
            yield FileResult(path, error=str(exc))
