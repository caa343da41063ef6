"""Knowledge distillation (``--teacher RUN [RUN ...]``): an ensemble of finished runs teaches
the one model that ships.

Why: the mean logit of three seeds of the recommended recipe ranks P-ADSD's held-out files
better than any one of them (docs/experiments.md), but a device can afford one 2.7 MB model.
The ensemble's calibrated probabilities on each training file, mixed with the file's label,
become that file's training target (offline distillation at temperature 1: the cross-entropy
with mixed targets is ``(1 - w) * CE(label) + w * CE(teacher)``). Targets are computed once
on the un-augmented image, stored in the run folder (``teacher_targets.npz``, which also
makes ``--resume`` cheap) and recorded with each teacher's ``model.keras`` SHA-256 in
``run.json``. Validation and test keep their labels: early stopping, temperature and
threshold are chosen as in any run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from artery_edge.edge.atomic import atomic_path
from artery_edge.edge.errors import ArteryEdgeError
from artery_edge.edge.metadata import sha256_of_file
from artery_edge.trainer.config import ConfigError
from artery_edge.trainer.runs import TrainedRun, load_run
from artery_edge.trainer.samples import DataError, Sample

TARGETS_FILE = "teacher_targets.npz"


def load_teachers(run_dirs: Sequence[str]) -> list[TrainedRun]:
    """Each teacher is a finished run whose model loads, or a one-line :class:`ConfigError`."""
    teachers = []
    for run_dir in run_dirs:
        try:
            run = load_run(Path(run_dir))
            run.keras_model()
        except ArteryEdgeError as exc:
            raise ConfigError(f"--teacher {run_dir}: {exc}") from None
        teachers.append(run)
    check_distinct(teachers)
    return teachers


def check_distinct(teachers: Sequence[TrainedRun]) -> None:
    """A teacher is its model, not its path: the same folder (another spelling, a link) or a copy
    of it (the same model.keras) would count twice in the ensemble's mean."""
    seen: dict[str, Path] = {}
    for teacher in teachers:
        digest = sha256_of_file(teacher.model_path)
        if digest in seen:
            same = "the same run" if seen[digest].resolve() == teacher.run_dir.resolve() else "the same model.keras"
            raise ConfigError(f"--teacher {seen[digest]} and --teacher {teacher.run_dir} are {same} given twice "
                              f"(sha256 {digest[:12]}...): each teacher counts once in the ensemble")
        seen[digest] = teacher.run_dir


def check_teacher_classes(teachers: Sequence[TrainedRun], class_names: list[str]) -> None:
    for teacher in teachers:
        if list(teacher.class_names) != list(class_names):
            raise DataError(f"--teacher {teacher.run_dir} was trained on classes {teacher.class_names}, "
                            f"the data has {list(class_names)}: a teacher needs the same classes")


def ensemble_probabilities(teachers: Sequence[TrainedRun], files: Sequence[Path],
                           progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """(N, n_classes): the normalised geometric mean of the teachers' calibrated probabilities,
    i.e. the softmax of their mean calibrated logit; each teacher reads the files at its own size."""
    from artery_edge.trainer.predict import KerasPredictor

    log_sum, done, total = None, 0, len(files) * len(teachers)
    for teacher in teachers:
        predictor = KerasPredictor.from_run(teacher.run_dir)
        found = []
        for start in range(0, len(files), 256):
            found.append(predictor.probabilities(list(files[start:start + 256]), batch_size=128))
            done += len(found[-1])
            if progress:
                progress(done, total)
        logs = np.log(np.clip(np.concatenate(found), 1e-7, 1.0))
        log_sum = logs if log_sum is None else log_sum + logs
    mean = log_sum / len(teachers)
    exp = np.exp(mean - mean.max(axis=1, keepdims=True))
    return (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32)


def one_hot(labels: np.ndarray, n_classes: int) -> np.ndarray:
    return np.eye(n_classes, dtype=np.float32)[np.asarray(labels, dtype=int)]


def mixed_targets(labels: np.ndarray, teacher: np.ndarray, weight: float) -> np.ndarray:
    """``(1 - weight) * one_hot(label) + weight * teacher``: rows sum to 1."""
    return ((1.0 - weight) * one_hot(labels, teacher.shape[1]) + weight * teacher).astype(np.float32)


def teacher_targets(run_dir: Path, samples: Sequence[Sample], teachers: Sequence[TrainedRun],
                    progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """The ensemble's probabilities for ``samples`` (the training split), read back from the run
    folder when an earlier start of this run stored them for exactly these files."""
    path = run_dir / TARGETS_FILE
    files = [str(s.path) for s in samples]
    if path.is_file():
        with np.load(path) as stored:
            if list(stored["files"]) == files and stored["teachers"].tolist() == [sha256_of_file(t.model_path)
                                                                                  for t in teachers]:
                return stored["probabilities"]
    probabilities = ensemble_probabilities(teachers, [s.path for s in samples], progress)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, files=np.array(files), probabilities=probabilities,
                     teachers=np.array([sha256_of_file(t.model_path) for t in teachers]))
    return probabilities


def teachers_record(teachers: Sequence[TrainedRun], weight: float) -> dict:
    """What ``run.json`` says about the ensemble that taught the run."""
    return {"weight": weight, "runs": [{"run": str(t.run_dir.resolve()), "name": t.run_dir.name,
                                        "model_sha256": sha256_of_file(t.model_path)} for t in teachers]}
