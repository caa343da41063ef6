"""Training hyperparameters in one dataclass: CLI options and ``--config file.toml`` both fill it."""

from __future__ import annotations

import math
import sys
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Optional

from artery_edge.edge.errors import ArteryEdgeError, OptionError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

MIN_IMAGE_SIZE = 32
MAX_IMAGE_SIZE = 1024  # MobileNetV2 was trained at 224; larger inputs only exhaust memory
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
CLASS_WEIGHTS = ("none", "balanced")
TASKS = ("classify", "map")
SCHEDULES = ("constant", "cosine")
OPERATING_POINTS = "argmax, youden, accuracy, sensitivity=X or specificity=X"


class ConfigError(ArteryEdgeError, ValueError):
    """A bad hyperparameter or config file; the message is one line for the user."""


class RangeError(ConfigError, OptionError):
    """A number outside the range it means something in: exit 2, as every command's range errors."""


@dataclass
class TrainConfig:
    """The full two-stage recipe. Defaults follow the original recipe (300 px, Adam 1e-4)."""

    data_dirs: list[str] = field(default_factory=list)  # one or several class-folder datasets, merged
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
    cut_at: str = ""  # a MobileNetV2 layer whose output feeds the head ("" = the whole base; trainer.model)
    patience: int = 5
    flip: bool = True
    rotation: float = 0.1
    zoom: float = 0.1
    contrast: float = 0.1
    brightness: float = 0.1
    tensorboard: bool = True
    sample_grid_size: int = 16
    class_weight: str = "none"  # none | balanced (inverse class frequency in the training split)
    split_file: str = ""  # CSV (file, subset): a predefined split instead of the random one
    group_pattern: str = ""  # regex; its first capture group on the file name keeps a group in one subset
    split_pattern: str = ""  # REGEX=SUBSET[,...]: a published split kept by file name, e.g. validation-=test
    schedule: str = "constant"  # constant | cosine (linear warm-up, then cosine decay to 0, per stage)
    warmup_epochs: float = 0.0  # cosine: epochs of linear warm-up at the start of each stage
    label_smoothing: float = 0.0
    site_augmentation: float = 0.0  # probability of imitating another site: down/up-sampling, gamma, noise, blur
    operating_point: str = "youden"  # the decision threshold, chosen on validation (see OPERATING_POINTS)
    steps_per_execution: int = 1
    strategy: str = "auto"  # auto | default | mirrored | multi-worker (trainer.distribute)
    devices: str = ""  # mirrored: comma-separated device names, default all local GPUs
    cluster_timeout: float = 600.0  # multi-worker: seconds to wait for the other workers to connect
    scale_learning_rate: bool = False  # multiply the learning rates by the number of replicas
    mixed_precision: bool = False  # mixed_float16 on GPU; refused on CPU-only machines
    init_from: str = ""  # a finished run whose weights this run starts from (a new site; same classes)
    replay: int = 0  # with init_from: images per class of the parent's training split mixed into training
    init_blend: float = 1.0  # with init_from: the parent's share of the starting base, the rest --weights' (WiSE-FT)
    teachers: list[str] = field(default_factory=list)  # finished runs whose ensemble teaches (trainer.distillation)
    teacher_weight: float = 0.5  # with teachers: the ensemble's share of each training target (1 - it: the label)
    task: str = "classify"  # classify (class folders -> labels) | map (whole frames -> a stenosis map; trainer.frame_training)
    target: str = "outline"  # map: what a lesion's target marks, its drawn outline (box where none) or its box

    def validate(self) -> "TrainConfig":
        """Types and ranges of every value, before anything is created (a bad value leaves no run)."""
        self._check_types()
        self._check_ranges()
        self._check_names_and_files()
        self._check_recipe()
        self._check_split_options()
        return self

    def _check_ranges(self) -> None:
        """Numbers: finite, and inside the range each one means something."""
        for name in ("alpha", "dropout", "l2", "learning_rate", "fine_tune_learning_rate", "rotation", "zoom",
                     "contrast", "brightness", "val_fraction", "test_fraction"):
            if not math.isfinite(getattr(self, name)):
                raise RangeError(f"{name.replace('_', '-')} must be a finite number, found {getattr(self, name)}")
        if not MIN_IMAGE_SIZE <= self.image_size <= MAX_IMAGE_SIZE:
            raise RangeError(f"image size {self.image_size} must lie between {MIN_IMAGE_SIZE} and {MAX_IMAGE_SIZE} px")
        if not 0 <= self.seed < 2**32:
            raise RangeError(f"seed must lie between 0 and {2**32 - 1}")
        if self.learning_rate <= 0 or self.fine_tune_learning_rate <= 0 or self.l2 < 0:
            raise RangeError("learning rates must be positive and l2 >= 0")
        if self.patience < 0 or self.sample_grid_size < 0:
            raise RangeError("patience and sample-grid-size must be >= 0")
        for name in ("rotation", "zoom", "contrast", "brightness", "site_augmentation"):
            if not 0 <= getattr(self, name) <= 1:
                raise RangeError(f"{name} must lie between 0 (off) and 1, found {getattr(self, name)}")
        if self.batch_size < 1:
            raise RangeError("batch size must be at least 1")
        if not 0 < self.val_fraction < 1 or not 0 <= self.test_fraction < 1:
            raise RangeError("validation fraction must lie between 0 and 1, test fraction in [0, 1) (0: no test split)")
        if self.val_fraction + self.test_fraction >= 1:
            raise RangeError("validation + test fractions must leave some training data")
        if self.alpha <= 0:
            raise RangeError("alpha must be positive")
        if not 0 <= self.dropout < 1:
            raise RangeError("dropout must be in [0, 1)")
        if self.epochs < 0 or self.fine_tune_epochs < 0 or self.epochs + self.fine_tune_epochs == 0:
            raise RangeError("epochs must be >= 0 and at least one stage must train")
        if self.fine_tune_at < 0:
            raise RangeError("fine-tune-at must be a layer index >= 0")

    def _check_names_and_files(self) -> None:
        """The run's folder name, and a weights file given by path."""
        if self.run_name and (Path(self.run_name).name != self.run_name or self.run_name in (".", "..")
                              or self.run_name.startswith(".") or not self.run_name.isprintable()):
            raise ConfigError(f"run name {self.run_name!r} must be a plain folder name (no '/', not hidden)")
        if self.weights not in ("imagenet", "none"):
            check_weights_file(Path(self.weights))

    def _check_recipe(self) -> None:
        """Choices among names (class weights, schedule, operating point) and the options that
        only make sense with another (warm-up with cosine, replay with init-from)."""
        if self.class_weight not in CLASS_WEIGHTS:
            raise ConfigError(f"class-weight must be one of {', '.join(CLASS_WEIGHTS)}, found {self.class_weight!r}")
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"schedule must be one of {', '.join(SCHEDULES)}, found {self.schedule!r}")
        if not (math.isfinite(self.warmup_epochs) and self.warmup_epochs >= 0):
            raise RangeError("warmup-epochs must be a number >= 0")
        if self.warmup_epochs and self.schedule != "cosine":
            raise ConfigError("warmup-epochs applies to --schedule cosine only (constant has no warm-up)")
        shortest = min(n for n in (self.epochs, self.fine_tune_epochs) if n > 0)  # one trains (_check_ranges)
        if self.warmup_epochs and self.warmup_epochs >= shortest:
            raise RangeError(f"warmup-epochs {self.warmup_epochs:g} must be shorter than each training stage "
                              f"(the shortest has {shortest} epochs): the learning rate would never decay")
        if not (math.isfinite(self.label_smoothing) and 0 <= self.label_smoothing < 0.5):
            raise RangeError("label-smoothing must lie in [0, 0.5)")
        if not (math.isfinite(self.cluster_timeout) and self.cluster_timeout > 0):
            raise RangeError("cluster-timeout must be a number of seconds > 0")
        if self.steps_per_execution < 1:
            raise RangeError("steps-per-execution must be at least 1")
        if not (math.isfinite(self.teacher_weight) and 0 < self.teacher_weight <= 1):
            raise RangeError(f"teacher-weight must lie in (0, 1] (the teachers' share of each target), "
                              f"found {self.teacher_weight}")
        if self.replay < 0 or (self.replay and not self.init_from):
            raise ConfigError("replay must be >= 0 and needs init-from (it samples the parent run's training split)")
        if not (math.isfinite(self.init_blend) and 0 < self.init_blend <= 1):
            raise RangeError(f"init-blend must lie in (0, 1] (the parent's share of the starting base weights), "
                              f"found {self.init_blend}")
        if self.init_blend < 1 and not (self.init_from and self.weights != "none"):
            raise ConfigError("init-blend < 1 needs init-from and pretrained --weights (the parent's base is blended "
                              "with the weights it was fine-tuned from)")
        parse_operating_point(self.operating_point)
        if self.task not in TASKS:
            raise ConfigError(f"task must be one of {', '.join(TASKS)}, found {self.task!r}")
        if self.target not in ("outline", "box"):
            raise ConfigError(f"target must be outline or box, found {self.target!r}")
        if self.task == "map" and self.image_size % 32:
            raise ConfigError(f"--task map needs an image size that is a multiple of 32, found {self.image_size}")

    def _check_split_options(self) -> None:
        """--split-file, or --split-pattern and/or --group-pattern: each parsed (or found) now."""
        from artery_edge.trainer.samples import DataError
        from artery_edge.trainer.splits import compile_group_pattern, parse_split_pattern

        if self.split_file and (self.group_pattern or self.split_pattern):
            raise ConfigError("give --split-file, or --split-pattern and/or --group-pattern, not both")
        try:
            if self.split_pattern:
                parse_split_pattern(self.split_pattern)
            if self.split_file and not Path(self.split_file).is_file():
                raise ConfigError(f"split file {self.split_file} does not exist")
            if self.group_pattern:
                compile_group_pattern(self.group_pattern)
        except DataError as exc:
            raise ConfigError(str(exc)) from None

    def _check_types(self) -> None:
        """Values from a TOML file arrive untyped: an int where an int belongs (not a bool),
        a number for a float, a string for a string, true/false for a flag."""
        for f in fields(self):
            value, kind = getattr(self, f.name), TYPES[f.name]
            ok = (isinstance(value, list) and all(isinstance(v, str) for v in value) if kind is list else
                  isinstance(value, bool) if kind is bool else
                  isinstance(value, (int, float)) and not isinstance(value, bool) if kind is float else
                  isinstance(value, kind) and not isinstance(value, bool))
            if not ok:
                what = "a list of folder names" if kind is list else kind.__name__
                raise ConfigError(f"{f.name.replace('_', '-')} must be {what}, found {value!r}")

    @property
    def pretrained(self) -> bool:
        """False for ``weights="none"`` without ``init_from``: the network then trains from scratch
        (see trainer.model). A run started from another run's weights is pretrained."""
        return self.weights != "none" or bool(self.init_from)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainConfig":
        """A saved config.json, older ones included (see :func:`upgrade`)."""
        return cls(**upgrade(values))

    def replace(self, **changes: Any) -> "TrainConfig":
        return TrainConfig(**{**self.to_dict(), **changes})


REMOVED = {  # options that no longer exist: an old config.json still loads; a config file naming one is refused
    "jit_compile": "removed: Keras never applied XLA to this model (its RandomRotation/RandomZoom layers "
                   "cannot be jit-compiled), see docs/training.md",
}


def upgrade(values: dict[str, Any]) -> dict[str, Any]:
    """The one place older saved configs are read: runs before multi-folder training name one
    ``data_dir``; options since removed (:data:`REMOVED`) are dropped, they never took effect."""
    values = {key: value for key, value in values.items() if key not in REMOVED}
    if "data_dir" in values:
        values["data_dirs"] = [values.pop("data_dir")]
    return values


FLAG_NAMES = {"teachers": "teacher"}  # a field whose flag is not its name: one --teacher RUN per teacher
NEEDS = {"teacher_weight": "teachers"}  # an option that means nothing without another: given alone, refused


def flag(name: str) -> str:
    """The command-line flag of a TrainConfig field, as the user types it (``teachers``: ``--teacher``)."""
    return "--" + FLAG_NAMES.get(name, name).replace("_", "-")


TYPES = {f.name: {"int": int, "float": float, "str": str, "bool": bool, "list[str]": list}[f.type]
         for f in fields(TrainConfig)}
DEFAULTS = TrainConfig()  # the single source of every default: the CLI reads its option defaults here


def parse_operating_point(rule: str) -> tuple[str, Optional[float]]:
    """``youden`` / ``accuracy`` / ``argmax`` or ``sensitivity=0.9`` / ``specificity=0.97``."""
    name, _, value = rule.partition("=")
    if name in ("argmax", "youden", "accuracy") and not value:
        return name, None
    if name in ("sensitivity", "specificity"):
        try:
            target = float(value)
        except ValueError:
            target = math.nan
        if 0 < target <= 1:
            return name, target
    raise ConfigError(f"operating point {rule!r} must be one of {OPERATING_POINTS} (0 < X <= 1)")


def check_weights_file(path: Path) -> None:
    """A weights file must exist and be a Keras legacy HDF5 ``.h5`` file (checked by its signature)."""
    if not path.is_file():
        raise ConfigError(f"weights file {path} does not exist (use imagenet, none or a .h5 path)")
    if path.suffix != ".h5" or path.name.endswith(".weights.h5"):
        raise ConfigError(f"weights file {path} must be a Keras .h5 file (not .weights.h5)")
    with open(path, "rb") as handle:
        if handle.read(8) != HDF5_SIGNATURE:
            raise ConfigError(f"weights file {path} is not an HDF5 file")


def load_config_file(path: Optional[Path]) -> dict[str, Any]:
    """Values from a TOML file (top level or a ``[train]`` table), with names checked."""
    if path is None:
        return {}
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8-sig"))  # an editor's BOM is no TOML
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path}: {exc}") from None
    outside = sorted(set(data) - {"train"}) if "train" in data else []
    if outside:  # with a [train] table only it is read: the rest would be ignored without a word
        raise ConfigError(f"config file {path}: {', '.join(outside)} outside the [train] table would be ignored; "
                          f"move it into [train] or remove it")
    data = data.get("train", data)
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: [train] must be a table of options")
    known = {f.name for f in fields(TrainConfig)}
    values = {key.replace("-", "_"): value for key, value in data.items()}
    for key in sorted(set(values) & set(REMOVED)):
        raise ConfigError(f"config file {path}: {key} was {REMOVED[key]}")
    values = upgrade(values)
    unknown = sorted(set(values) - known)
    if unknown:
        fields_of = {spelling: name for name, spelling in FLAG_NAMES.items()}  # the flag's spelling as a key
        named = [f"{key} (the key is {fields_of[key]}, a list)" if key in fields_of else key for key in unknown]
        raise ConfigError(f"config file {path}: unknown option(s) {', '.join(named)}")
    return values


def merge_config(given: dict[str, Any], config_file: Optional[Path] = None) -> TrainConfig:
    """The one merge of a ``--config`` TOML file and the options given (they win), as
    Ultralytics' ``get_cfg``: an option in neither keeps its default, paths become strings.
    Names are checked here, values by :meth:`TrainConfig.validate`."""
    unknown = sorted(set(given) - set(TYPES))
    if unknown:
        raise ConfigError(f"unknown option(s) {', '.join(unknown)}")
    values = {**load_config_file(config_file), **{name: as_config_value(value) for name, value in given.items()}}
    check_needed(values)
    return TrainConfig(**values)


def check_needed(values: dict[str, Any]) -> None:
    """An option given (flag or config file) without the one it applies to would be silently
    ignored, even at its default value: refused (:data:`NEEDS`)."""
    for name, needed in NEEDS.items():
        if name in values and not values.get(needed):
            raise ConfigError(f"{flag(name)} applies with {flag(needed)} only (it would be ignored); "
                              f"add {flag(needed)} or leave {flag(name)} out")


def as_config_value(value: Any) -> Any:
    """A path (or a list of paths) as the string(s) a config holds."""
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return str(value) if isinstance(value, Path) else value


def changed_options(config: Optional[TrainConfig]) -> list[str]:
    """The options of ``config`` that differ from the defaults."""
    if config is None:
        return []
    default = TrainConfig()
    return [name for name, value in config.to_dict().items() if value != getattr(default, name)]


def refuse_options_on_resume(options: list[str], resume_dir: Path) -> None:
    """A resumed run continues with the options it started with: any option given (by its
    name, e.g. ``fine_tune_at``; ``config`` for a config file) is an error, not silently ignored."""
    if options:
        flags = ", ".join(flag(name) for name in options)
        raise ConfigError(f"--resume {resume_dir} continues with the options the run started with; "
                          f"leave out {flags} (a new run takes new options)")
