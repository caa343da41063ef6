"""Classify images with a trained Keras model: the workstation-side 'deployment' step.

Images are decoded and resized by the same function the training pipeline uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from artery_edge.edge.decision import decide, positive_index
from artery_edge.edge.imaging import ImageSource, load_image
from artery_edge.trainer.runs import load_keras_model, load_run


@dataclass
class KerasPrediction:
    label: str
    probabilities: dict[str, float]


class KerasPredictor:
    """A trained ``model.keras`` plus the class names and input size of its run; with a run's
    calibration temperature and operating point it decides as the exported .tflite files do."""

    def __init__(self, model_path: Path, class_names: Sequence[str], image_size: int, temperature: float = 1.0,
                 threshold: Optional[float] = None) -> None:
        from artery_edge.trainer.model import serving_model

        self.model = serving_model(load_keras_model(Path(model_path)), temperature)
        self.class_names = list(class_names)
        self.image_size = int(image_size)
        self.threshold = threshold

    @classmethod
    def from_run(cls, run_dir: Path) -> "KerasPredictor":
        """The run's model with its classes, input size, temperature and operating point.

        Args:
            run_dir: a finished training run (``trainer.runs.load_run`` checks it).
        """
        run = load_run(run_dir)
        return cls(run.model_path, run.class_names, run.image_size, run.temperature, run.threshold)

    def probabilities(self, sources: Sequence[ImageSource], batch_size: int = 32) -> np.ndarray:
        """(N, n_classes) float probabilities for image files, Pillow images or arrays."""
        results = []
        for start in range(0, len(sources), batch_size):
            batch = np.stack([load_image(s, self.image_size) for s in sources[start : start + batch_size]])
            results.append(np.asarray(self.model(batch.astype(np.float32), training=False)))
        return np.concatenate(results) if results else np.zeros((0, len(self.class_names)), np.float32)

    def labels(self, sources: Sequence[ImageSource], batch_size: int = 32) -> list[str]:
        """The class each source is called, at the run's operating point, in batches (as ``predict`` decides)."""
        chosen = decide(self.probabilities(sources, batch_size), self.threshold, positive_index(self.class_names))
        return [self.class_names[int(i)] for i in np.atleast_1d(chosen)]

    def predict(self, source: ImageSource) -> KerasPrediction:
        probabilities = self.probabilities([source])[0]
        index = int(decide(probabilities, self.threshold, positive_index(self.class_names)))
        return KerasPrediction(
            label=self.class_names[index],
            probabilities={name: float(p) for name, p in zip(self.class_names, probabilities)},
        )
