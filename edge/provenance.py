"""Whether a model belongs to the run it is used with: the one check, wherever a model meets a run.

A run is known by three facts: its class names in order, its input size and the SHA-256 of its
``model.keras``. Every .tflite the converters write records the same three in its metadata
(``labels``, ``input_size``, ``model_sha256``). A file from another run, from a retrained
model, with swapped labels or with no metadata at all is refused with one line that names each
difference: its decisions would be read with the wrong classes, or compared with another model.
TensorFlow-free: the device package and ``inspect`` use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

from artery_edge.edge.errors import ModelError
from artery_edge.edge.metadata import ModelMetadata, sha256_of_file


class ForeignModelError(ModelError):
    """A model file does not come from the run (or the twin) it is used with."""


@dataclass(frozen=True)
class RunIdentity:
    """What identifies a run's model: where it is (for messages), classes, input size, model digest."""

    where: str
    class_names: tuple[str, ...]
    image_size: int
    model_sha256: str

    @classmethod
    def of(cls, run) -> "RunIdentity":
        """From a ``trainer.runs.TrainedRun`` (anything with run_dir, class_names, image_size, model_path)."""
        return cls(str(run.run_dir), tuple(run.class_names), int(run.image_size), sha256_of_file(run.model_path))


def short(digest: str) -> str:
    return digest[:12] if digest else "none"


def label_differences(labels: Sequence[str], class_names: Sequence[str], whose: str = "the run") -> list[str]:
    """Empty when ``labels`` are the classes in the same order; else what differs (a swap says so)."""
    labels, class_names = list(labels), list(class_names)
    if labels == class_names:
        return []
    order = " (the same names in another order: every decision would be inverted)" \
        if sorted(labels) == sorted(class_names) else ""
    return [f"classes {','.join(labels)} where {whose} has {','.join(class_names)}{order}"]


def metadata_differences(metadata: Optional[ModelMetadata], run: RunIdentity) -> list[str]:
    """Every way a .tflite's metadata disagrees with ``run`` (empty: it belongs)."""
    if metadata is None:
        return ["it carries no artery-edge metadata (not converted by artery-edge)"]
    found = label_differences(metadata.labels, run.class_names)
    if metadata.input_size != run.image_size:
        found.append(f"input {metadata.input_size} px where the run has {run.image_size} px")
    if metadata.model_sha256 != run.model_sha256:
        found.append(f"converted from a model.keras with sha256 {short(metadata.model_sha256)}..., "
                     f"the run's is {short(run.model_sha256)}...")
    return found


def check_tflite(path: Path, metadata: Optional[ModelMetadata], run: RunIdentity) -> None:
    """Refuse a .tflite that was not converted from ``run``'s model with its classes."""
    found = metadata_differences(metadata, run)
    if found:
        raise ForeignModelError(f"{path} does not belong to the run {run.where}: {'; '.join(found)}")


def check_labels(labels: Sequence[str], run: RunIdentity) -> None:
    """Class names given by hand (``convert --labels``) must be the run's own, in its order."""
    found = label_differences(labels, run.class_names)
    if found:
        raise ForeignModelError(f"--labels do not match the run {run.where}: {found[0]}; leave --labels out "
                                "for a run (its classes are known)")


def check_recorded_model(path: Path, run: RunIdentity, recorded: Optional[str]) -> None:
    """A run's ``model.keras`` must be the file it finished with (``run.json`` records its SHA-256):
    another run's model copied in would otherwise pass as this run's, as a parent, a teacher or
    evaluated, with this run's classes, threshold and data recorded beside it."""
    if recorded and run.model_sha256 != recorded:
        raise ForeignModelError(f"{path} is not the model the run {run.where} finished with: its sha256 is "
                                f"{short(run.model_sha256)}..., run.json records {short(recorded)}... "
                                f"(replaced or damaged since)")


def check_keras(path: Path, input_size: Optional[int], n_outputs: int, run: RunIdentity) -> None:
    """A Keras model in a run folder must take the run's input size and give one output per class."""
    found = []
    if input_size is not None and input_size != run.image_size:
        found.append(f"input {input_size} px where the run has {run.image_size} px")
    if n_outputs != len(run.class_names):
        found.append(f"{n_outputs} outputs for the run's {len(run.class_names)} classes")
    if found:
        raise ForeignModelError(f"{path} does not belong to the run {run.where}: {'; '.join(found)}")


def check_twin(model: Path, metadata: Optional[ModelMetadata], reference: Path,
               reference_metadata: Optional[ModelMetadata]) -> None:
    """Two .tflite files converted from the same Keras model (a quantized file and its float32 twin)."""
    if metadata is None or reference_metadata is None:
        which = reference if reference_metadata is None else model
        raise ForeignModelError(f"{which} carries no artery-edge metadata: cannot tell it is the twin of the other "
                                "file (both must be converted from one model.keras)")
    found = label_differences(reference_metadata.labels, metadata.labels, Path(model).name)
    if reference_metadata.input_size != metadata.input_size:
        found.append(f"input {reference_metadata.input_size} px vs {metadata.input_size} px")
    if reference_metadata.model_sha256 != metadata.model_sha256:
        found.append(f"converted from model.keras sha256 {short(reference_metadata.model_sha256)}..., "
                     f"{Path(model).name} from {short(metadata.model_sha256)}...")
    if found:
        raise ForeignModelError(f"{reference} is not the twin of {model}: {'; '.join(found)}")
