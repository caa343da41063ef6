"""Training hyperparameters in one dataclass: CLI options and ``--config file.toml`` both fill it."""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Optional

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

MIN_IMAGE_SIZE = 32


class ConfigError(ValueError):
    """A bad hyperparameter or config file; the message is one line for the user."""


@dataclass
class TrainConfig:
    """The full two-stage recipe. Defaults follow the original recipe (300 px, Adam 1e-4)."""

    data_dir: str = ""
    output_dir: str = "models"
    run_name: str = ""
    log_dir: str = "transfer_learning_log"
    image_size: int = 300
    batch_size: int = 32
    seed: int = 42
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    alpha: float = 1.0
    weights: str = "imagenet"
    dropout: float = 0.2
    l2: float = 1e-4
    learning_rate: float = 1e-4
    epochs: int = 10
    fine_tune_epochs: int = 10
    fine_tune_learning_rate: float = 1e-5
    fine_tune_at: int = 0
    patience: int = 5
    flip: bool = True
    rotation: float = 0.1
    zoom: float = 0.1
    contrast: float = 0.1
    brightness: float = 0.1
    tensorboard: bool = True
    sample_grid_size: int = 16

    def validate(self) -> "TrainConfig":
        if self.image_size < MIN_IMAGE_SIZE:
            raise ConfigError(f"image size {self.image_size} is below the minimum of {MIN_IMAGE_SIZE} px")
        if self.batch_size < 1:
            raise ConfigError("batch size must be at least 1")
        if not 0 < self.val_fraction < 1 or not 0 < self.test_fraction < 1:
            raise ConfigError("validation and test fractions must lie between 0 and 1")
        if self.val_fraction + self.test_fraction >= 1:
            raise ConfigError("validation + test fractions must leave some training data")
        if self.alpha <= 0:
            raise ConfigError("alpha must be positive")
        if not 0 <= self.dropout < 1:
            raise ConfigError("dropout must be in [0, 1)")
        if self.epochs < 0 or self.fine_tune_epochs < 0 or self.epochs + self.fine_tune_epochs == 0:
            raise ConfigError("epochs must be >= 0 and at least one stage must train")
        if self.fine_tune_at < 0:
            raise ConfigError("fine-tune-at must be a layer index >= 0")
        if self.weights not in ("imagenet", "none") and not Path(self.weights).is_file():
            raise ConfigError(f"weights file {self.weights} does not exist (use imagenet, none or a .h5 path)")
        return self

    @property
    def pretrained(self) -> bool:
        """False for ``weights="none"``: the network then trains from scratch (see trainer.model)."""
        return self.weights != "none"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def replace(self, **changes: Any) -> "TrainConfig":
        return TrainConfig(**{**self.to_dict(), **changes})


def load_config_file(path: Optional[Path]) -> dict[str, Any]:
    """Values from a TOML file (top level or a ``[train]`` table), with names checked."""
    if path is None:
        return {}
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path}: {exc}") from None
    data = data.get("train", data)
    known = {f.name for f in fields(TrainConfig)}
    values = {key.replace("-", "_"): value for key, value in data.items()}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"config file {path}: unknown option(s) {', '.join(unknown)}")
    return values
