"""Read back a finished run directory: its model, class names, input size, config and split."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from trainer.data import SPLIT_FILE, DataError, Sample, common_root, read_split
from trainer.training import MODEL_FILE, RUN_FILE


@dataclass
class TrainedRun:
    run_dir: Path
    class_names: list[str]
    image_size: int
    config: dict
    metrics: dict
    temperature: float = 1.0  # fitted on the validation split after training (1: not calibrated)
    threshold: Optional[float] = None  # on p(positive), chosen on the validation split (None: arg-max)
    parent: Optional[dict] = None  # the run it was adapted from (--init-from): path, name, model_sha256, data

    @property
    def model_path(self) -> Path:
        return self.run_dir / MODEL_FILE

    @property
    def data_dir(self) -> Path:
        """Where the split manifest's files are relative to: the data folder, or the common
        parent of several (runs before multi-folder training name one ``data_dir``)."""
        folders = self.config.get("data_dirs") or [self.config.get("data_dir", "")]
        return common_root(folders)

    def split(self, data_dir: Optional[Path] = None) -> list[Sample]:
        """The run's split manifest, files resolved against ``data_dir`` (default: where it trained)."""
        return read_split(self.run_dir / SPLIT_FILE, Path(data_dir or self.data_dir), self.class_names)


def load_run(run_dir: Path) -> TrainedRun:
    """A finished run, or a one-line :class:`DataError` saying what is missing."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise DataError(f"run directory {run_dir} does not exist")
    for name in (RUN_FILE, "config.json", SPLIT_FILE, MODEL_FILE):
        if not (run_dir / name).is_file():
            raise DataError(f"{run_dir} is not a finished training run: {name} is missing")
    metrics_file = run_dir / "metrics.json"
    try:
        run = json.loads((run_dir / RUN_FILE).read_text())
        class_names, image_size = run["class_names"], run["image_size"]
        if not (isinstance(class_names, list) and len(class_names) >= 2 and all(isinstance(c, str) for c in class_names)
                and isinstance(image_size, int) and not isinstance(image_size, bool) and image_size > 0):
            raise ValueError("class_names or image_size has the wrong type")
        config = json.loads((run_dir / "config.json").read_text())
        metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}
        if not isinstance(config, dict) or not isinstance(metrics, dict):
            raise ValueError("config.json and metrics.json must hold JSON objects")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:  # JSONDecodeError is a ValueError
        raise DataError(f"{run_dir}: damaged run files ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None
    temperature = run.get("temperature") or 1.0
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not 0 < temperature < float("inf"):
        raise DataError(f"{run_dir}: damaged run files (temperature {temperature!r})")
    threshold = run.get("threshold")
    if threshold is not None and (isinstance(threshold, bool) or not isinstance(threshold, (int, float))
                                  or not 0 <= threshold <= 1):
        raise DataError(f"{run_dir}: damaged run files (threshold {threshold!r})")
    parent = run.get("parent")
    if parent is not None and not (isinstance(parent, dict) and isinstance(parent.get("model_sha256"), str)):
        raise DataError(f"{run_dir}: damaged run files (parent {parent!r})")
    return TrainedRun(run_dir=run_dir, class_names=list(class_names), image_size=image_size, config=config,
                      metrics=metrics, temperature=float(temperature),
                      threshold=None if threshold is None else float(threshold), parent=parent)
