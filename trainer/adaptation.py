"""The recipe for adapting a trained run to a new site from about a hundred labelled patches.

``artery-edge adapt SITE --from RUN`` is ``artery-edge train SITE --init-from RUN`` with these
values: a recipe made for ~100 images instead of thousands. Kept as TrainConfig values (not
a second training loop), so an adapted run is an ordinary run: resumable, convertible,
evaluable, with its parent recorded in ``run.json``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from artery_edge.trainer.config import DEFAULTS, ConfigError, TrainConfig

# Why each value (measured on xca-site-b, README "A new site"):
ADAPTATION_RECIPE: dict[str, Any] = {
    "split_pattern": "validation-=validation",  # the site's published validation files pick epochs, T, threshold
    "test_fraction": 0.0,  # every other file adapts: with 100 images none is spared for a test split
    "batch_size": 16,  # ~6 steps per epoch on 100 images
    # the whole base: cutting it after block 13 (--cut-at, the paper's "network cut") ranked site B
    # no better over 2 x 5 folds and cost P-ADSD 0.27 AUC instead of 0.05 (docs/site-adaptation.md)
    "cut_at": "",
    # the parent's base halfway back to the ImageNet weights it was fine-tuned from (WiSE-FT): zero-shot on
    # site B this ranked 0.88 AUC against the parent's 0.68 (docs/site-adaptation.md, "The blended start")
    "init_blend": 0.5,
    "epochs": 3,  # stage 1: the head first re-balances to the site at a high rate, base frozen ...
    "learning_rate": 1e-3,
    "fine_tune_epochs": 15,  # ... then the whole base (BatchNorm frozen) moves gently (plateaus by ~10)
    "fine_tune_learning_rate": 1e-4,
    "fine_tune_at": 0,
    "schedule": "cosine",
    "warmup_epochs": 1.0,
    "patience": 6,  # 25 validation images: val_loss is noisy, early stopping must not fire on one bad epoch
    # flips only (a patch has no up; a flip adds no pixel): with any rotation (reflected fill), zoom and
    # contrast/brightness jitter, 10 fresh folds gave INT8 accuracy 0.876, without them 0.936
    # (docs/site-adaptation.md, "Flips only")
    "rotation": 0.0,
    "zoom": 0.0,
    "contrast": 0.0,
    "brightness": 0.0,
    "label_smoothing": 0.0,
    "site_augmentation": 0.0,  # the new site's own images now stand for it
    "operating_point": "youden",  # ~12 negatives cannot estimate a 0.97 specificity target
    "tensorboard": False,
    "sample_grid_size": 16,
}


def adaptation_config(data_dirs: Sequence[str], init_from: str, image_size: int, **overrides: Any) -> TrainConfig:
    """The TrainConfig of an adaptation run (``overrides`` win over the recipe)."""
    values = {**ADAPTATION_RECIPE, **overrides}
    return TrainConfig(data_dirs=[str(d) for d in data_dirs], init_from=str(init_from), image_size=image_size,
                       **values)


@dataclass
class AdaptOptions:
    """``adapt``'s options: the site's class folders, the parent run, and the recipe values a user
    may change. An image size of 0 is the parent's, read when the options are made: a parent that
    cannot be read is one line naming --from, before any training."""

    data_dirs: Sequence[Path]
    parent: Path
    image_size: int = 0
    replay: int = DEFAULTS.replay
    cut_at: str = ADAPTATION_RECIPE["cut_at"]
    init_blend: float = ADAPTATION_RECIPE["init_blend"]
    split_pattern: str = ADAPTATION_RECIPE["split_pattern"]
    output_dir: Path = Path(DEFAULTS.output_dir)
    run_name: str = ""
    seed: int = DEFAULTS.seed

    def __post_init__(self) -> None:
        from artery_edge.trainer.runs import load_run
        from artery_edge.trainer.samples import DataError

        if self.image_size == 0:
            try:
                self.image_size = load_run(self.parent).image_size
            except DataError as exc:
                raise ConfigError(f"--from: {exc}") from None

    def config(self) -> TrainConfig:
        """The adaptation run's TrainConfig (checked with every other run's, when training starts)."""
        return adaptation_config([str(d) for d in self.data_dirs], str(self.parent), self.image_size,
                                 replay=self.replay, cut_at=self.cut_at, init_blend=self.init_blend,
                                 split_pattern=self.split_pattern, output_dir=str(self.output_dir),
                                 run_name=self.run_name, seed=self.seed)
