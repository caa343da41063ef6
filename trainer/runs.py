"""Read back a finished run directory: its model, class names, input size, config and split."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from trainer.data import SPLIT_FILE, DataError, Sample, read_split
from trainer.training import MODEL_FILE, RUN_FILE


@dataclass
class TrainedRun:
    run_dir: Path
    class_names: list[str]
    image_size: int
    config: dict
    metrics: dict

    @property
    def model_path(self) -> Path:
        return self.run_dir / MODEL_FILE

    @property
    def data_dir(self) -> Path:
        return Path(self.config["data_dir"])

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
    run = json.loads((run_dir / RUN_FILE).read_text())
    metrics_file = run_dir / "metrics.json"
    return TrainedRun(
        run_dir=run_dir,
        class_names=list(run["class_names"]),
        image_size=int(run["image_size"]),
        config=json.loads((run_dir / "config.json").read_text()),
        metrics=json.loads(metrics_file.read_text()) if metrics_file.is_file() else {},
    )
