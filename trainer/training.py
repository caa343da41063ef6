"""The two-stage run: data -> frozen-base training -> fine-tuning -> test metrics and artefacts.

Everything is checked (config, weights, data, split) before the run directory is
created, so bad input never leaves a half-written run behind.
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from trainer import data as datamod
from trainer.config import TrainConfig
from trainer.metrics import binary_metrics, confusion_matrix

POSITIVE_LABEL = "Unhealthy"
RUN_FILE = "run.json"
MODEL_FILE = "model.keras"

Log = Callable[[str], None]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class RunResult:
    run_dir: Path
    metrics: dict
    history: dict[str, list[float]]
    stage1_epochs: int
    seconds: float


def create_run_dir(output_dir: Path, run_name: str = "") -> Path:
    """A new, empty folder under ``output_dir``; an existing one is never reused."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    stem = run_name or datetime.now().strftime("run-%Y%m%d-%H%M%S")
    for attempt in range(1, 1000):
        candidate = output_dir / (stem if attempt == 1 else f"{stem}-{attempt}")
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
    raise RuntimeError(f"cannot create a new run directory under {output_dir}")


def check_writable(folder: Path) -> None:
    """Create ``folder`` if needed and prove a file can be written there (an OSError otherwise),
    so an unwritable output or log folder fails before training, not after it."""
    import tempfile

    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile(dir=folder):
        pass


def positive_index(class_names: list[str]) -> int:
    """The class whose recall is 'sensitivity': Unhealthy when present, else the last class."""
    return class_names.index(POSITIVE_LABEL) if POSITIVE_LABEL in class_names else len(class_names) - 1


def test_metrics(probabilities: np.ndarray, labels: np.ndarray, class_names: list[str], loss: float) -> dict:
    predicted = probabilities.argmax(axis=1)
    result = {
        "n": int(len(labels)),
        "loss": float(loss),
        "accuracy": float((predicted == labels).mean()) if len(labels) else None,
        "class_names": class_names,
        "confusion_matrix": confusion_matrix(labels, predicted, len(class_names)).tolist(),
    }
    if len(class_names) == 2:
        positive = positive_index(class_names)
        result["positive_class"] = class_names[positive]
        result.update(binary_metrics(labels, probabilities[:, positive], predicted, positive))
    return result


def _sample_grids(model, samples, config: TrainConfig, class_names: list[str], run_dir: Path) -> None:
    from trainer.model import AUGMENTATION
    from trainer.plots import plot_image_grid

    rng = np.random.default_rng(config.seed)
    chosen = [samples[i] for i in rng.permutation(len(samples))[: config.sample_grid_size]]
    images, labels = datamod.load_arrays(chosen, config.image_size)
    titles = [class_names[label] for label in labels]
    plot_image_grid(images, titles, run_dir / "samples.png", "training samples")
    augmented = model.get_layer(AUGMENTATION)(images.astype("float32"), training=True)
    plot_image_grid(np.asarray(augmented), titles, run_dir / "samples_augmented.png", "augmented (same images)")


def make_callbacks(config: TrainConfig, run_dir: Path, tb_dir: Path) -> Callable[[], list]:
    """Fresh EarlyStopping per stage; checkpoint and CSV log shared so they span both stages."""
    import keras

    checkpoint = keras.callbacks.ModelCheckpoint(str(run_dir / "best.keras"), monitor="val_loss", save_best_only=True)
    csv_log = keras.callbacks.CSVLogger(str(run_dir / "history.csv"), append=True)

    def for_stage() -> list:
        found = [keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.patience, restore_best_weights=True),
                 checkpoint, csv_log]
        if config.tensorboard:
            found.append(keras.callbacks.TensorBoard(log_dir=str(tb_dir), profile_batch=0))
        return found

    return for_stage


def fit_two_stages(model, config: TrainConfig, train_ds, val_ds, callbacks: Callable[[], list], log: Log,
                   verbose: int) -> tuple[dict[str, list[float]], int]:
    """Stage 1 (frozen base) then stage 2 (fine-tuning), epochs numbered on; the joint history
    and how many epochs stage 1 ran (EarlyStopping may end it early)."""
    from trainer.model import compile_model, set_stage

    history: dict[str, list[float]] = {}
    stage1_epochs = 0
    stages = ((1, config.epochs, config.learning_rate), (2, config.fine_tune_epochs, config.fine_tune_learning_rate))
    for stage, epochs, lr in stages:
        if epochs == 0:
            continue
        set_stage(model, stage, config.fine_tune_at, config.pretrained)
        compile_model(model, lr)  # recompile: a change of `trainable` only counts after it
        trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
        what = "fine-tuning" if stage == 2 else "frozen base" if config.pretrained else \
            "from scratch (--weights none): whole network trains"
        log(f"stage {stage}: {what}, lr {lr:g}, {trainable:,} trainable parameters")
        done = len(history.get("loss", []))
        with warnings.catch_warnings():  # Keras warns that a tf.data input ignores shuffle=True
            warnings.filterwarnings("ignore", message=".*shuffle=True.*")
            fit = model.fit(train_ds, validation_data=val_ds, initial_epoch=done, epochs=done + epochs,
                            callbacks=callbacks(), verbose=verbose)
        for key, values in fit.history.items():
            history.setdefault(key, []).extend(float(v) for v in values)
        if stage == 1:
            stage1_epochs = len(history.get("loss", []))
    return history, stage1_epochs


def write_json(path: Path, data) -> None:
    path.write_text(json.dumps(data, indent=2))


def train(config: TrainConfig, log: Log = _stderr, verbose: Optional[int] = None) -> RunResult:
    """Run the full recipe and return where it landed and its test metrics."""
    import keras

    from trainer.model import build_model, resolve_weights
    from trainer.plots import plot_history

    start = time.perf_counter()
    config.validate()
    resolve_weights(config)  # a bad weights option fails before the data scan
    data_dir = Path(config.data_dir).resolve()
    scanned = datamod.scan_dataset(data_dir, progress=datamod.print_progress("checking images"))
    for message in scanned.skipped:
        log(f"warning: skipping {message}")
    samples = datamod.stratified_split(scanned.samples, config.val_fraction, config.test_fraction, config.seed)
    split = {name: datamod.subset(samples, name) for name in datamod.SUBSETS}
    class_names = scanned.class_names
    log(f"classes {class_names}; " + ", ".join(f"{k}: {len(v)}" for k, v in split.items()))

    keras.utils.set_random_seed(config.seed)
    model = build_model(len(class_names), config)  # may download ImageNet weights: before the run exists
    for folder in [Path(config.output_dir)] + ([Path(config.log_dir)] if config.tensorboard else []):
        check_writable(folder)
    run_dir = create_run_dir(Path(config.output_dir), config.run_name)
    config = config.replace(data_dir=str(data_dir))
    log(f"run directory: {run_dir}")
    write_json(run_dir / "config.json", config.to_dict())
    datamod.write_split(run_dir / datamod.SPLIT_FILE, samples, data_dir, class_names)

    train_ds = datamod.make_dataset(split["train"], config.image_size, config.batch_size, shuffle=True, seed=config.seed)
    val_ds = datamod.make_dataset(split["validation"], config.image_size, config.batch_size)
    test_ds = datamod.make_dataset(split["test"], config.image_size, config.batch_size)

    _sample_grids(model, split["train"], config, class_names, run_dir)
    tb_dir = Path(config.log_dir) / datetime.now().strftime("%Y%m%d-%H%M%S")
    verbose = verbose if verbose is not None else (1 if sys.stderr.isatty() else 2)
    history, stage1_epochs = fit_two_stages(model, config, train_ds, val_ds, make_callbacks(config, run_dir, tb_dir),
                                            log, verbose)

    model.save(run_dir / MODEL_FILE)
    loss = model.evaluate(test_ds, verbose=0)[0]
    labels = np.array([s.label for s in split["test"]])
    metrics = test_metrics(model.predict(test_ds, verbose=0), labels, class_names, loss)
    seconds = time.perf_counter() - start
    metrics["train_seconds"] = round(seconds, 1)
    write_json(run_dir / "metrics.json", metrics)
    write_json(run_dir / "history.json", {"stage1_epochs": stage1_epochs, **history})
    write_json(run_dir / RUN_FILE, {
        "class_names": class_names,
        "image_size": config.image_size,
        "counts": {k: len(v) for k, v in split.items()},
        "skipped": scanned.skipped,
        "stage1_epochs": stage1_epochs,
        "tensorboard_dir": str(tb_dir) if config.tensorboard else None,
        "keras_version": keras.__version__,
    })
    plot_history(history, stage1_epochs, run_dir / "history.png")
    return RunResult(run_dir, metrics, history, stage1_epochs, seconds)
