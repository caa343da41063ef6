"""Resumable two-stage training, built on ``keras.callbacks.BackupAndRestore``.

BackupAndRestore (one backup folder per stage, inside the run directory) brings back the
weights, the optimizer and the epoch of an interrupted ``fit``. What it does not keep is
kept here, in ``backup/state.json``, written at the end of every epoch:

- which stage finished and after how many epochs (EarlyStopping may end stage 1 early);
- EarlyStopping's patience counter, best value and best weights (``stageN_best.weights.h5``);
- the best ``val_loss`` behind ``best.keras``, so a resumed run does not overwrite it with a worse model.

``history.csv`` is the history of record: on resume, rows past the restored epoch (an epoch
logged but not backed up when the process died) are dropped, so no epoch appears twice.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path
from typing import Optional

import keras
import numpy as np

from artery_edge.edge.atomic import atomic_path, write_text
from artery_edge.trainer.config import ConfigError
from artery_edge.trainer.runs import BACKUP_DIR, save_keras

STATE_FILE = "state.json"


class RunState:
    """The small JSON record next to the BackupAndRestore folders."""

    def __init__(self, run_dir: Path) -> None:
        self.folder = Path(run_dir) / BACKUP_DIR
        self.path = self.folder / STATE_FILE
        self.data: dict = {}
        if self.path.is_file():
            try:
                self.data = json.loads(self.path.read_text())
                if not isinstance(self.data, dict):
                    raise ValueError("not a JSON object")
            except (ValueError, UnicodeDecodeError) as exc:
                raise damaged(self.path, exc) from None

    def save(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        write_text(self.path, json.dumps(self.data, indent=2))

    def stage_dir(self, stage: int) -> Path:
        return self.folder / f"stage{stage}"

    def best_weights_path(self, stage: int) -> Path:
        return self.folder / f"stage{stage}_best.npz"

    def end_weights_path(self, stage: int) -> Path:
        return self.folder / f"stage{stage}_end.npz"

    @property
    def started(self) -> bool:
        return bool(self.data)

    def stage_done(self, stage: int) -> Optional[int]:
        """Epochs done when ``stage`` ended (numbered across stages), or None if it did not end."""
        return self.data.get(f"stage{stage}_done")

    def mark_done(self, stage: int, epochs: int, model: keras.Model) -> None:
        """Record that ``stage`` ended after ``epochs``, with the weights it ended with
        (layer weights only: the next stage compiles its own optimizer)."""
        save_arrays(self.end_weights_path(stage), model.get_weights())
        self.data[f"stage{stage}_done"] = epochs
        self.save()

    def load_end_weights(self, stage: int, model: keras.Model) -> None:
        model.set_weights(load_arrays(self.end_weights_path(stage)))

    def restored_epoch(self, stage: int, default: int) -> int:
        """The epoch BackupAndRestore will resume ``stage`` at, after making its backup usable.

        A kill -9 can land while the backup is written. Keras keeps the previous backup too
        (``double_checkpoint``) and falls back to it when the latest cannot be opened; this
        does the same for a cut metadata file, and when neither copy is whole (the process
        died writing the stage's first backup) the stage restarts from its beginning.
        """
        folder = self.stage_dir(stage)
        weights, metadata = folder / "latest.weights.h5", folder / "training_metadata.json"
        if not weights.exists():
            return default
        for suffix in ("", ".bkp"):
            candidate_weights, candidate_meta = Path(f"{weights}{suffix}"), Path(f"{metadata}{suffix}")
            try:
                epoch = int(json.loads(candidate_meta.read_text())["epoch"])
                readable_h5(candidate_weights)
            except (OSError, ValueError, KeyError, TypeError):
                continue
            if suffix:
                shutil.copyfile(candidate_weights, weights)
                shutil.copyfile(candidate_meta, metadata)
            return epoch
        shutil.rmtree(folder, ignore_errors=True)
        return default


def forget_restored_epoch(model: keras.Model) -> None:
    """Clear the epoch a previous ``fit``'s BackupAndRestore restored (keras 3.15): it sets the
    model's private ``_initial_epoch``, never resets it, and ``fit`` prefers it over its own
    ``initial_epoch`` argument, so a stage-1 resume leaked into stage 2 (which then repeated
    epochs). Call before every ``fit``; remove when Keras resets it itself."""
    model._initial_epoch = None


def save_arrays(path: Path, arrays: list) -> None:
    """Weights as ``.npz``, written atomically (a kill mid-write leaves the previous file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as temp, open(temp, "wb") as handle:
        np.savez(handle, *arrays)


def load_arrays(path: Path) -> list:
    """Weights saved by :func:`save_arrays`; a missing or damaged file is one :class:`ConfigError` line."""
    try:
        with np.load(path) as saved:
            return [saved[f"arr_{i}"] for i in range(len(saved.files))]
    except (OSError, ValueError, EOFError, KeyError) as exc:
        raise damaged(path, exc) from None


def damaged(path: Path, exc: Exception) -> ConfigError:
    """The one error line for a resume state that cannot be read."""
    reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
    return ConfigError(f"cannot resume: {path} is damaged ({reason}); start a new run")


def readable_h5(path: Path) -> None:
    """Read every dataset of an HDF5 file: a file cut short raises OSError."""
    import h5py

    with h5py.File(path, "r") as handle:
        handle.visititems(lambda name, item: item[()] if isinstance(item, h5py.Dataset) else None)


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """EarlyStopping whose counter, best value and best weights survive a restart of the process."""

    def __init__(self, state: RunState, stage: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.state, self.stage = state, stage

    def on_train_begin(self, logs=None) -> None:
        super().on_train_begin(logs)
        saved = self.state.data.get(f"early_stopping_stage{self.stage}")
        if saved:
            self.wait, self.best, self.best_epoch = saved["wait"], saved["best"], saved["best_epoch"]
            if self.restore_best_weights and self.state.best_weights_path(self.stage).is_file():
                self.best_weights = load_arrays(self.state.best_weights_path(self.stage))

    def on_epoch_end(self, epoch, logs=None) -> None:
        super().on_epoch_end(epoch, logs)
        if self.wait == 0 and self.restore_best_weights and self.best_weights is not None:  # just improved
            save_arrays(self.state.best_weights_path(self.stage), self.best_weights)
        self.state.data[f"early_stopping_stage{self.stage}"] = {
            "wait": self.wait, "best": float(self.best), "best_epoch": self.best_epoch,
        }


class BestModel(keras.callbacks.Callback):
    """``best.keras``: the model at its lowest ``val_loss`` so far, written atomically
    (``trainer.runs.save_keras``). Keras' ModelCheckpoint writes in place: a kill or a full disk
    mid-save left a truncated file, later read as "made for another architecture". ``best``
    starts at a resumed run's, so it is not overwritten with a worse model."""

    def __init__(self, path: Path, best: Optional[float] = None) -> None:
        super().__init__()
        self.path, self.best = Path(path), np.inf if best is None else float(best)

    def on_epoch_end(self, epoch, logs=None) -> None:
        current = (logs or {}).get("val_loss")
        if current is not None and current < self.best:
            self.best = float(current)
            save_keras(self.model, self.path)


class SaveState(keras.callbacks.Callback):
    """Writes the run state once per epoch (after EarlyStopping and the checkpoint updated theirs)."""

    def __init__(self, state: RunState, checkpoint: BestModel) -> None:
        super().__init__()
        self.state, self.checkpoint = state, checkpoint

    def on_epoch_end(self, epoch, logs=None) -> None:
        self.state.data["checkpoint_best"] = float(self.checkpoint.best)
        self.state.data["last_epoch"] = epoch + 1
        self.state.save()


def truncate_history(path: Path, epochs: int) -> None:
    """Keep the rows of ``history.csv`` for epochs ``< epochs`` (the ones the backup covers)."""
    if not path.is_file():
        return
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    if not rows:
        return
    try:
        kept = [rows[0]] + [row for row in rows[1:] if row and int(row[0]) < epochs]
    except ValueError as exc:  # a row cut by a kill mid-write
        raise damaged(path, exc) from None
    if len(kept) != len(rows):
        text = io.StringIO()
        csv.writer(text).writerows(kept)
        write_text(path, text.getvalue())


def read_history(path: Path) -> dict[str, list[float]]:
    """``history.csv`` as ``{metric: [value per epoch]}``, epochs in order."""
    if not path.is_file():
        return {}
    with open(path, newline="") as handle:
        rows = sorted(csv.DictReader(handle), key=lambda row: int(row["epoch"]))
    return {key: [float(row[key]) for row in rows] for key in (rows[0] if rows else {}) if key != "epoch"}
