"""Start a run from another run's weights (``init_from``): adapting a trained model to a new
site with a few labelled patches.

Everything about the parent is checked before the new run folder exists: that it is a
finished run, that its ``model.keras`` loads, that it has the same classes. The new run
records the parent (path and SHA-256 of its ``model.keras``), so every file it exports can
say which model it was adapted from.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from artery_edge.edge.errors import ArteryEdgeError
from artery_edge.edge.metadata import sha256_of_file
from artery_edge.trainer.config import ConfigError
from artery_edge.trainer.runs import TrainedRun, load_run
from artery_edge.trainer.samples import DataError, Sample, subset

TRANSFERRED_LAYERS = ("mobilenetv2", "classifier")  # trainer.model's BASE and head: all the weights there are


@dataclass
class Parent:
    """A finished run and its loaded Keras model."""

    run: TrainedRun
    model_sha256: str
    model: Any  # keras.Model

    @property
    def alpha(self) -> float:
        return float(self.run.config.alpha)

    def record(self) -> dict:
        """What the new run (run.json, model card, .tflite metadata) says about its parent."""
        folders = self.run.config.data_dirs
        return {
            "run": str(self.run.run_dir.resolve()),
            "name": self.run.run_dir.name,
            "model_sha256": self.model_sha256,
            "data": " + ".join(Path(f).name for f in folders),
            "image_size": self.run.image_size,
            "threshold": self.run.threshold,
            "operating_point": self.run.record.operating_point or self.run.config.operating_point,
        }


def expected_layers(task: str) -> tuple[str, ...]:
    """The layers a parent of ``task`` holds its weights in (a classifier's base and head; a map
    model's encoder and map)."""
    if task == "map":
        from artery_edge.trainer.frame_model import ENCODER, OUTPUT

        return ENCODER, OUTPUT
    return TRANSFERRED_LAYERS


def check_task(run: TrainedRun, task: str) -> None:
    """A classifier starts from a classifier, a map model from a map model."""
    if run.task != task:
        raise ConfigError(f"parent run {run.run_dir} is a {run.task} run; --task {task} starts from a {task} run")


def load_parent(run_dir: Path, task: str = "classify") -> Parent:
    """The run to start from, or a one-line :class:`ConfigError` (no run, another task's run, damaged
    model, a model that is not its run's). It says "parent run": train calls it --init-from, adapt --from."""
    try:
        run = load_run(Path(run_dir))
        check_task(run, task)
        if not run.config.alpha > 0:
            raise ConfigError(f"config.json has no valid alpha ({run.config.alpha!r})")
        model = run.keras_model()
    except ArteryEdgeError as exc:
        raise ConfigError(f"parent run {run_dir}: {exc}") from None
    missing = [name for name in expected_layers(run.task) if name not in {layer.name for layer in model.layers}]
    if missing:
        raise ConfigError(f"parent run {run_dir}: {run.model_path.name} is not an artery-edge model "
                          f"(no layer {', '.join(missing)})")
    return Parent(run, sha256_of_file(run.model_path), model)


def check_classes(parent: Parent, class_names: list[str]) -> None:
    """Adaptation keeps the parent's head: the new data must have exactly its classes."""
    if list(class_names) != list(parent.run.class_names):
        raise DataError(f"parent run {parent.run.run_dir} was trained on classes {parent.run.class_names}, "
                        f"the data has {list(class_names)}: starting from a run needs the same classes")


def blend_target(parent: Parent) -> str:
    """What ``--init-blend`` blends the parent toward: the weights it was fine-tuned from (its
    own ``--weights``: imagenet or a file). A parent trained from scratch has none."""
    weights = parent.run.config.weights
    if weights == "none":
        raise ConfigError(f"parent run {parent.run.run_dir} was trained from scratch (--weights none): there are "
                          f"no pretrained weights to blend it with; pass --init-blend 1")
    return weights


def copy_weights(parent: Parent, model, blend: float = 1.0) -> bool:
    """The parent's base and head into ``model`` (any input size: the base is convolutional).
    A base cut earlier than the parent's (``--cut-at``) takes the layers it kept; its head then
    reads other features and starts afresh. Returns whether the head was copied.

    ``blend`` < 1 starts the base between the parent and the weights ``model`` was built with
    (:func:`blend_target`: those the parent was fine-tuned from): ``blend * parent + (1 - blend) * built``.
    Why: a model fine-tuned on one site ranks another site's patches far worse than the same
    weights moved part of the way back to ImageNet (WiSE-FT, Wortsman et al., CVPR 2022;
    measured on xca-site-b in docs/site-adaptation.md)."""
    base, parent_base = (m.get_layer(TRANSFERRED_LAYERS[0]) for m in (model, parent.model))
    known = {layer.name for layer in parent_base.layers}
    missing = [layer.name for layer in base.layers if layer.weights and layer.name not in known]
    if missing:
        raise ConfigError(f"parent run {parent.run.run_dir}: its base ends before {missing[0]}; "
                          f"--cut-at must end at or before the parent's last layer ({parent_base.layers[-1].name})")
    for layer in base.layers:
        if layer.weights:
            weights = parent_base.get_layer(layer.name).get_weights()
            if blend < 1:
                weights = [blend * w + (1 - blend) * built for w, built in zip(weights, layer.get_weights())]
            layer.set_weights(weights)
    head, parent_head = (m.get_layer(TRANSFERRED_LAYERS[1]) for m in (model, parent.model))
    if [w.shape for w in head.weights] != [w.shape for w in parent_head.weights]:
        return False
    head.set_weights(parent_head.get_weights())
    return True


def replay_samples(parent: Parent, per_class: int, seed: int) -> list[Sample]:
    """``per_class`` images of each class from the parent's training split, as training samples:
    mixed into adaptation, they remind the model of the original site (against forgetting)."""
    try:
        pool = subset(parent.run.split(), "train")
    except DataError as exc:
        raise DataError(f"--replay: {exc}") from None
    rng = np.random.default_rng(seed)
    chosen: list[Sample] = []
    for label, name in enumerate(parent.run.class_names):
        candidates = [s for s in pool if s.label == label]
        if len(candidates) < per_class:  # fewer than asked, silently, would be another recipe
            raise DataError(f"--replay {per_class}: the training split of {parent.run.run_dir} has only "
                            f"{len(candidates)} image(s) of {name}; ask for at most "
                            f"{min(sum(s.label == c for s in pool) for c in range(len(parent.run.class_names)))}")
        picked = [candidates[i] for i in rng.permutation(len(candidates))[:per_class]]
        chosen += [Sample(s.path, s.label, "train", "replay") for s in picked]
    absent = [s.path for s in chosen if not s.path.is_file()]
    if absent:
        raise DataError(f"--replay: {len(absent)} file(s) of the parent's training split are missing, e.g. {absent[0]}")
    return chosen
