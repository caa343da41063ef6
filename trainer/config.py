"""Training hyperparameters in one dataclass: CLI options and ``--config file.toml`` both fill it."""

from __future__ import annotations

import math
import sys
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, List, Optional

from artery_edge.edge.errors import ArteryEdgeError, OptionError
from artery_edge.edge.model_record import TASKS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

MIN_IMAGE_SIZE = 32
MAX_IMAGE_SIZE = 1024  # MobileNetV2 was trained at 224; larger inputs only exhaust memory
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
CLASS_WEIGHTS = ("none", "balanced")
SCHEDULES = ("constant", "cosine")
OPERATING_POINTS = "argmax, youden, accuracy, sensitivity=X or specificity=X"


class ConfigError(ArteryEdgeError, ValueError):
    """A bad hyperparameter or config file; the message is one line for the user."""


class RangeError(ConfigError, OptionError):
    """A number outside the range it means something in: exit 2, as every command's range errors."""


def flag_of(help: Optional[str] = None, negatable: bool = False, path: bool = False) -> dict[str, Any]:
    """A field's metadata that makes it a ``train`` flag (see :func:`train_flags`): its ``--help``
    text, whether ``--no-NAME`` is offered, and whether it names a file or folder (a Path on the
    command line; unset when empty)."""
    return {"help": help, "negatable": negatable, "path": path}


@dataclass
class TrainConfig:
    """The full two-stage recipe. Defaults follow the original recipe (300 px, Adam 1e-4)."""

    data_dirs: list[str] = field(default_factory=list)  # one or several class-folder datasets, merged
    output_dir: str = field(default="models", metadata=flag_of("Runs land in a new folder here.", path=True))
    run_name: str = field(default="", metadata=flag_of("Run folder name (default: run-<timestamp>)."))
    log_dir: str = field(default="transfer_learning_log", metadata=flag_of("TensorBoard root.", path=True))
    image_size: int = field(default=300, metadata=flag_of("Square input size in pixels (>= 32)."))
    batch_size: int = field(default=32, metadata=flag_of())
    seed: int = field(default=42, metadata=flag_of("Seeds the split, shuffling and initialisation."))
    val_fraction: float = field(default=0.15, metadata=flag_of())
    test_fraction: float = field(default=0.15, metadata=flag_of())
    alpha: float = field(default=1.0, metadata=flag_of("MobileNetV2 width multiplier."))
    weights: str = field(default="imagenet", metadata=flag_of("imagenet, none, or a path to a .h5 file."))
    dropout: float = field(default=0.2, metadata=flag_of())
    l2: float = field(default=1e-4, metadata=flag_of("L2 factor on the classifier kernel."))
    learning_rate: float = field(default=1e-4, metadata=flag_of("Stage 1 (frozen base) Adam learning rate."))
    epochs: int = field(default=10, metadata=flag_of("Stage 1 epochs."))
    fine_tune_epochs: int = field(default=10, metadata=flag_of("Stage 2 epochs (0 skips fine-tuning)."))
    fine_tune_learning_rate: float = field(default=1e-5, metadata=flag_of())
    fine_tune_at: int = field(default=0, metadata=flag_of("Unfreeze base layers from this index on."))
    # a MobileNetV2 layer whose output feeds the head ("" = the whole base; trainer.model)
    cut_at: str = field(default="", metadata=flag_of(
        "End the base at this MobileNetV2 layer (e.g. block_13_expand_relu): earlier, less specialised features; "
        "'' keeps the whole base."))
    patience: int = field(default=5, metadata=flag_of("EarlyStopping patience on val_loss."))
    flip: bool = field(default=True, metadata=flag_of("Random horizontal and vertical flips.", negatable=True))
    rotation: float = field(default=0.1, metadata=flag_of("Random rotation, fraction of a full turn (0 = off)."))
    zoom: float = field(default=0.1, metadata=flag_of("Random zoom factor (0 = off)."))
    contrast: float = field(default=0.1, metadata=flag_of("Random contrast factor (0 = off)."))
    brightness: float = field(default=0.1, metadata=flag_of("Random brightness factor (0 = off)."))
    tensorboard: bool = field(default=True, metadata=flag_of(negatable=True))
    sample_grid_size: int = 16
    # none | balanced (inverse class frequency in the training split)
    class_weight: str = field(default="none", metadata=flag_of(
        "none, or balanced: weight each class by its inverse frequency in training."))
    # CSV (file, subset): a predefined split instead of the random one
    split_file: str = field(default="", metadata=flag_of(
        "CSV with file (or path) and subset columns: train on this predefined split.", path=True))
    # regex; its first capture group on the file name keeps a group in one subset
    group_pattern: str = field(default="", metadata=flag_of(
        "Regex; the first capture group of each file name is its group (patient, recording): "
        "no group crosses train/validation/test."))
    # REGEX=SUBSET[,...]: a published split kept by file name, e.g. validation-=test
    split_pattern: str = field(default="", metadata=flag_of(
        "REGEX=SUBSET[,...]: files whose name matches go to that subset (a published split, e.g. "
        "'validation-=test'); the rest fill the other subsets by --val-fraction / --test-fraction."))
    # constant | cosine (linear warm-up, then cosine decay to 0, per stage)
    schedule: str = field(default="constant", metadata=flag_of(
        "constant, or cosine: linear warm-up then cosine decay to 0, in each stage."))
    # cosine: epochs of linear warm-up at the start of each stage
    warmup_epochs: float = field(default=0.0, metadata=flag_of("cosine: warm-up epochs per stage."))
    label_smoothing: float = field(default=0.0, metadata=flag_of("0 (off) to 0.5."))
    # probability of imitating another site: down/up-sampling, gamma, noise, blur
    site_augmentation: float = field(default=0.0, metadata=flag_of(
        "Probability per image of each of: down-sampling to 32 px and back, gamma, noise, blur (0 = off)."))
    # the decision threshold, chosen on validation (see OPERATING_POINTS)
    operating_point: str = field(default="youden", metadata=flag_of(
        "Decision threshold chosen on validation and stored with the model: argmax (0.5), youden, accuracy, "
        "sensitivity=X or specificity=X."))
    steps_per_execution: int = field(default=1, metadata=flag_of(
        "Training steps per call into the compiled function."))
    # auto | default | mirrored | multi-worker (trainer.distribute)
    strategy: str = field(default="auto", metadata=flag_of(
        "auto (mirrored if >1 GPU), default (one device), mirrored (local GPUs or --devices), multi-worker "
        "(TF_CONFIG; the chief writes the run)."))
    # mirrored: comma-separated device names, default all local GPUs
    devices: str = field(default="", metadata=flag_of("mirrored: devices to replicate on, e.g. /gpu:0,/gpu:1."))
    cluster_timeout: float = field(default=600.0, metadata=flag_of(
        "multi-worker: seconds to wait for the other workers to connect."))
    scale_learning_rate: bool = field(default=False, metadata=flag_of(
        "Multiply the learning rates by the number of replicas (--batch-size is per replica).", negatable=True))
    # mixed_float16 on GPU; refused on CPU-only machines
    mixed_precision: bool = field(default=False, metadata=flag_of("mixed_float16 on GPU (refused on CPU)."))
    # a finished run whose weights this run starts from (a new site; same classes)
    init_from: str = field(default="", metadata=flag_of(
        "Start from this finished run's weights (same classes; its alpha; any input size); see also `adapt`.",
        path=True))
    # with init_from: images per class of the parent's training split mixed into training
    replay: int = field(default=0, metadata=flag_of(
        "With --init-from: images per class of the parent's training split mixed in."))
    # with init_from: the parent's share of the starting base, the rest --weights' (WiSE-FT)
    init_blend: float = field(default=1.0, metadata=flag_of(
        "With --init-from: the parent's share of the starting base weights, the rest from --weights (1: the parent "
        "as is; 0.5: halfway back, WiSE-FT)."))
    # finished runs whose ensemble teaches (trainer.distillation)
    teachers: list[str] = field(default_factory=list, metadata=flag_of(
        "A finished run whose predictions teach this one (repeat for an ensemble: their mean calibrated logit); "
        "same classes, any input size.", path=True))
    # with teachers: the ensemble's share of each training target (1 - it: the label)
    teacher_weight: float = field(default=0.5, metadata=flag_of(
        "With --teacher: the ensemble's share of each training target (the rest is the label)."))
    # classify (class folders -> labels) | map (whole frames -> a stenosis map; trainer.frame_training)
    task: str = field(default="classify", metadata=flag_of(
        "classify: class folders -> labels; map: whole frames with COCO or VOC lesions -> a stenosis map that "
        "`scan` reads (docs/whole-frames.md)."))
    # map: what a lesion's target marks, its drawn outline (box where none) or its box
    target: str = field(default="outline", metadata=flag_of(
        "--task map: a lesion's target is its drawn outline (its box where none) or box."))

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


@dataclass(frozen=True)
class Flag:
    """A TrainConfig field as ``train`` offers it: the type and default the command line parses,
    its flag declaration(s) and ``--help`` text."""

    name: str
    kind: Any
    default: Any
    declarations: tuple[str, ...]
    help: Optional[str]


def train_flags() -> list[Flag]:
    """``train``'s options, in field order: each field with :func:`flag_of` metadata (``data_dirs``
    is the command's argument, ``sample_grid_size`` a config-file key only). A path field is a
    Path there, unset (None) when its default is empty; a negatable flag also has ``--no-NAME``."""
    flags = []
    for f in fields(TrainConfig):
        if "help" not in f.metadata:
            continue
        kind, default = TYPES[f.name], getattr(DEFAULTS, f.name)
        if f.metadata["path"]:
            kind, default = ((Optional[List[Path]], None) if kind is list else (Path, Path(default)) if default
                             else (Optional[Path], None))
        off = f"/--no-{f.name.replace('_', '-')}" if f.metadata["negatable"] else ""
        flags.append(Flag(f.name, kind, default, (flag(f.name) + off,), f.metadata["help"]))
    return flags


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


def train_settings(given: dict[str, Any], config_file: Optional[Path], resume: Optional[Path]) -> TrainConfig:
    """``train``'s settings from the options typed (``given``, by field name) and a ``--config``
    file: a resumed run takes none (refused before merging, so the message says "leave it out",
    not why a value is wrong), and exactly one of DATA folders or ``--resume`` is given."""
    if resume is not None:
        refuse_options_on_resume(["config"] * bool(config_file) + [name for name in given if name != "data_dirs"],
                                 resume)
    settings = merge_config(given, config_file)
    if (not settings.data_dirs) == (resume is None):
        raise OptionError("give DATA folder(s) to train, or --resume RUN_DIR to continue a run (not both)")
    return settings


def refuse_options_on_resume(options: list[str], resume_dir: Path) -> None:
    """A resumed run continues with the options it started with: any option given (by its
    name, e.g. ``fine_tune_at``; ``config`` for a config file) is an error, not silently ignored."""
    if options:
        flags = ", ".join(flag(name) for name in options)
        raise ConfigError(f"--resume {resume_dir} continues with the options the run started with; "
                          f"leave out {flags} (a new run takes new options)")


# The settings that describe a recipe, per task: the model cards' tables and the training summary
# in every .tflite (one list, so the card and the file never disagree on what was recorded)
RECIPE_KEYS = {
    "classify": ("image_size", "alpha", "weights", "epochs", "learning_rate", "fine_tune_epochs",
                 "fine_tune_learning_rate", "fine_tune_at", "cut_at", "init_blend", "batch_size", "dropout", "l2",
                 "flip", "rotation", "zoom", "contrast", "brightness", "class_weight", "split_file", "group_pattern",
                 "seed", "strategy"),
    "map": ("image_size", "alpha", "weights", "target", "epochs", "learning_rate", "fine_tune_epochs",
            "fine_tune_learning_rate", "schedule", "batch_size", "patience", "flip", "rotation", "zoom", "contrast",
            "brightness", "seed"),
}


def recipe(config: TrainConfig) -> dict[str, Any]:
    """The recipe's settings (:data:`RECIPE_KEYS` of its task), JSON-ready."""
    values = config.to_dict()
    names = {key: Path(values[key]).name for key in ("weights", "split_file") if values[key]}  # no machine's paths
    return {key: names.get(key, values[key]) for key in RECIPE_KEYS[config.task]}
