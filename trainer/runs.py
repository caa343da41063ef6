"""The run directory: its file names, how it is created, locked and written, and how it is read back.

One owner for every fact about a run folder (issue 21): training writes through these
helpers, and conversion, evaluation, adaptation and explanation read through
:func:`load_run` and :meth:`TrainedRun.keras_model`. Every file is written atomically
(``edge.atomic``), so a kill or a full disk never leaves a truncated one under its name.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator, Optional

from artery_edge.edge.atomic import atomic_path, write_text
from artery_edge.edge.errors import ArteryEdgeError
from artery_edge.edge.model_record import LEGACY_NAMES, ModelRecord
from artery_edge.trainer.config import ConfigError, TrainConfig
from artery_edge.trainer.keras_files import ModelLoadError, keras_errors
from artery_edge.trainer.samples import DataError, Sample
from artery_edge.trainer.scan import common_root
from artery_edge.trainer.split_files import read_split

CONFIG_FILE = "config.json"  # the TrainConfig the run trained with
SPLIT_FILE = "split.csv"  # every file with its class, subset and group
RUN_FILE = "run.json"  # written last: its presence marks a finished run
METRICS_FILE = "metrics.json"
HISTORY_CSV = "history.csv"  # the history of record, one row per epoch (Keras' CSVLogger)
HISTORY_JSON = "history.json"
HISTORY_PLOT = "history.png"
SAMPLES_PLOT = "samples.png"
AUGMENTED_PLOT = "samples_augmented.png"
MODEL_FILE = "model.keras"  # the final model (the trained graph, augmentation included)
BEST_MODEL_FILE = "best.keras"  # the best val_loss seen (ModelCheckpoint)
BACKUP_DIR = "backup"  # resume state (trainer.resume); removed when the run finishes
LOCK_FILE = ".lock"  # held by the process training or resuming the run
MAX_NUMBER = 1000  # name, name-2 ... name-999


class RunBusyError(ArteryEdgeError):
    """Another process is training or resuming this run."""


def numbered_folder(base: Path) -> Path:
    """Create and return ``base``, or ``base-2``, ``base-3``... when taken: an existing folder is
    never reused (mkdir is the test, so two processes never get the same one)."""
    base = Path(base)
    base.parent.mkdir(parents=True, exist_ok=True)
    for number in range(1, MAX_NUMBER):
        candidate = base if number == 1 else base.with_name(f"{base.name}-{number}")
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
    raise FileExistsError(17, f"no free name among {base.name}, {base.name}-2 ... -{MAX_NUMBER - 1}", str(base))


@dataclass
class RunResult:
    """What a training returns (``trainer.training.train``, the whole-frame recipe alike)."""

    run_dir: Path
    metrics: dict
    history: dict[str, list[float]]
    stage1_epochs: int
    seconds: float


def create_run_dir(output_dir: Path, run_name: str = "") -> Path:
    """A new, empty folder under ``output_dir``; an existing one is never reused."""
    return numbered_folder(Path(output_dir) / (run_name or datetime.now().strftime("run-%Y%m%d-%H%M%S")))


def check_writable(folder: Path) -> None:
    """Create ``folder`` if needed and prove a file can be written there (an OSError otherwise),
    so an unwritable output or log folder fails before training, not after it."""
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile(dir=folder):
        pass


def write_json(path: Path, data: Any) -> None:
    """JSON, indented, written atomically."""
    write_text(path, json.dumps(data, indent=2))


def save_keras(model, path: Path) -> None:
    """``model.save`` atomically (Keras wants the ``.keras`` suffix, so the temporary file keeps it)."""
    with atomic_path(path) as temp:
        staged = temp.with_suffix(".keras")
        try:
            model.save(staged)
            os.replace(staged, temp)
        finally:
            staged.unlink(missing_ok=True)


@contextlib.contextmanager
def locked(run_dir: Path) -> Iterator[None]:
    """Hold the run's lock while training or resuming it: a second process gets a one-line
    :class:`RunBusyError` instead of interleaving epochs with the first. The lock is the
    kernel's (``flock``), so a process killed with -9 releases it."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no flock, no protection
        yield
        return
    path = Path(run_dir) / LOCK_FILE
    handle = open(path, "a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "?"
            raise RunBusyError(f"{run_dir} is being trained by another process (pid {owner}); "
                               "wait for it to end or stop it first") from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield
    finally:
        handle.close()


@dataclass
class TrainedRun:
    """A finished run: its folder, its model's record (``run.json``), its config and metrics."""

    run_dir: Path
    record: ModelRecord
    config: TrainConfig
    metrics: dict
    about: dict = field(default_factory=dict)  # run.json's other facts: how it trained (counts, seconds...)

    # the record's facts under the names the trainer's readers use
    class_names = property(lambda self: self.record.labels)
    image_size = property(lambda self: self.record.input_size)
    task = property(lambda self: self.record.task)
    temperature = property(lambda self: float(self.record.temperature))  # 1: not calibrated
    threshold = property(lambda self: self.record.threshold)  # on p(positive), chosen on validation; None: arg-max
    decoding = property(lambda self: self.record.decoding)  # map: how the map becomes lesions (min_area)
    parent = property(lambda self: self.record.parent or None)  # the run it was adapted from (--init-from)
    model_sha256 = property(lambda self: self.record.model_sha256 or None)  # of model.keras (None: not recorded)
    positive = property(lambda self: self.class_names.index(self.record.positive_label))  # the record names it

    @property
    def model_path(self) -> Path:
        return self.run_dir / MODEL_FILE

    @property
    def data_dir(self) -> Path:
        """Where the split manifest's files are relative to: the data folder, or the common
        parent of several."""
        return common_root(self.config.data_dirs)

    def split(self, data_dir: Optional[Path] = None) -> list[Sample]:
        """The run's split manifest, files resolved against ``data_dir`` (default: where it trained)."""
        return read_split(self.run_dir / SPLIT_FILE, Path(data_dir or self.data_dir), self.class_names)

    def keras_model(self):
        """The run's trained Keras model (augmentation included), or a one-line error: a
        :class:`ModelLoadError`, or a ``ForeignModelError`` for a model that does not take the
        run's input size or give one output per class (a file copied in from elsewhere), which
        every reader (teachers, a parent, evaluate, explain) would otherwise meet mid-work."""
        from artery_edge.edge.provenance import RunIdentity, check_keras, check_recorded_model

        identity = RunIdentity.of(self)
        check_recorded_model(self.model_path, identity, self.model_sha256)  # before a replaced file is even loaded
        model = load_keras_model(self.model_path)
        check_keras(self.model_path, model.input_shape[1], int(model.output_shape[-1]), identity)
        return model


def load_run(run_dir: Path) -> TrainedRun:
    """A finished run, or a one-line :class:`DataError` saying what is missing."""
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise DataError(f"{run_dir} is not a run directory but a file (give the run's folder)")
    if not run_dir.is_dir():
        raise DataError(f"run directory {run_dir} does not exist")
    for name in (RUN_FILE, CONFIG_FILE, SPLIT_FILE, MODEL_FILE):
        if not (run_dir / name).is_file():
            raise DataError(f"{run_dir} is not a finished training run: {name} is missing")
    metrics_file = run_dir / METRICS_FILE
    try:
        written = json.loads((run_dir / RUN_FILE).read_text())
        record = ModelRecord.from_dict(written)
        config = read_config(run_dir)
        metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}
        if not isinstance(metrics, dict):
            raise ValueError("metrics.json must hold a JSON object")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:  # JSONDecodeError is a ValueError
        raise DataError(f"{run_dir}: damaged run files ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None
    about = {key: value for key, value in written.items() if key not in record.to_dict() and key not in LEGACY_NAMES}
    return TrainedRun(run_dir=run_dir, record=record, config=config, metrics=metrics, about=about)


def write_run(run_dir: Path, record: ModelRecord, **about_training: Any) -> None:
    """``run.json``, written last (its presence marks a finished run): the model's record, checked,
    and what only the run knows (counts, strategy, seconds...)."""
    try:
        record.check()
    except ValueError as exc:
        raise DataError(f"{run_dir}: the model's record is not valid ({exc})") from None
    facts = record.to_dict()
    assert not set(facts) & set(about_training), "how a run trained never restates the record's facts"
    write_json(Path(run_dir) / RUN_FILE, {**facts, **about_training})


def read_config(run_dir: Path) -> TrainConfig:
    """The run's ``config.json`` as a typed :class:`TrainConfig` (legacy keys handled by
    ``TrainConfig.from_dict``); values are type-checked, not re-validated (a weights file
    may have moved since). A ValueError names what is wrong."""
    values = json.loads((Path(run_dir) / CONFIG_FILE).read_text())
    if not isinstance(values, dict):
        raise ValueError("config.json must hold a JSON object")
    try:
        config = TrainConfig.from_dict(values)
        config._check_types()
    except TypeError as exc:  # an unknown key
        raise ValueError(str(exc)) from None
    return config


def resumable_run(run_dir: Path) -> TrainConfig:
    """The config of an interrupted run; a finished or missing run is a one-line error."""
    run_dir = Path(run_dir)
    if not (run_dir / CONFIG_FILE).is_file() or not (run_dir / SPLIT_FILE).is_file():
        raise ConfigError(f"{run_dir} is not a run directory ({CONFIG_FILE} and {SPLIT_FILE} are missing)")
    if (run_dir / RUN_FILE).is_file() or (run_dir / METRICS_FILE).is_file():
        raise ConfigError(f"{run_dir} finished training; there is nothing to resume")
    try:
        return read_config(run_dir).validate()
    except (ValueError, TypeError) as exc:
        if isinstance(exc, ConfigError):
            raise ConfigError(f"{run_dir}: cannot resume: {exc}") from None
        raise ConfigError(f"{run_dir}/{CONFIG_FILE} cannot be read ({str(exc).splitlines()[0]})") from None


def load_keras_model(path: Path):
    """Every load of a Keras model file goes through here: Keras' many failure types (a cut or
    non-zip file, a ``Lambda`` layer refused by safe mode, an unknown layer) become one
    :class:`ModelLoadError` line. Safe mode stays on: a file never runs code on load."""
    import keras

    import artery_edge.trainer.model  # noqa: F401 - registers the project's layers and losses before loading

    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"no Keras model at {path}")
    with keras_errors(path, "Keras model"):
        return keras.models.load_model(path, compile=False)
