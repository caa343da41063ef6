"""Training the whole-frame model (``train --task map``): frames in, a run folder out.

The same shapes as the classifier's recipe: a run folder that is never reused, two stages
(decoder on a frozen ImageNet encoder, then both at a lower learning rate), EarlyStopping on
the validation loss, TensorBoard, a history plot, ``--resume`` (Keras' ``BackupAndRestore``
inside the run), and a decision threshold chosen on validation by a named rule and recorded
with the model. Frames come from :func:`edge.annotations.load_frames` (COCO or VOC) and enter
the model through :func:`edge.imaging.load_image`, as on the device.

A dataset folder with ``train/`` and ``val/`` sub-folders (ARCADE's published split) is used as
split; otherwise its frames are split at random (``--val-fraction`` / ``--test-fraction``,
whole runs kept together when the folder has sub-folders per run).
"""

from __future__ import annotations

import csv
import io
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional, Sequence

import numpy as np

from artery_edge.edge.annotations import Frame, load_frames
from artery_edge.edge.atomic import atomic_path, write_text
from artery_edge.edge.imaging import load_image
from artery_edge.edge.metadata import sha256_of_file
from artery_edge.edge.model_record import ModelRecord
from artery_edge.trainer import runs
from artery_edge.trainer.config import ConfigError, TrainConfig
from artery_edge.trainer.frame_metrics import score_maps, truth_outlines
from artery_edge.trainer.runs import RunResult, check_writable, create_run_dir

if TYPE_CHECKING:
    from artery_edge.trainer.parent import Parent

Log = Callable[[str], None]
THRESHOLDS = tuple(round(t, 2) for t in np.arange(0.10, 0.91, 0.05))
LESION_LABEL = "stenosis"  # the one class of the map
THRESHOLD_RULE = "arcade-f1"  # the threshold with the best mean ARCADE F1 on validation
MIN_AREA_FRACTIONS = (0.0002, 0.0005, 0.001, 0.002, 0.004)  # of the map: 13 to 262 px at 256
STATE_FILE = "frame_state.json"
BACKUP_DIR = runs.BACKUP_DIR
GAMMA_RANGE = (0.7, 1.4)
NOISE_MAX = 8.0


@dataclass
class FrameSplit:
    train: list[Frame]
    val: list[Frame]
    test: list[Frame]


def split_frames(config: TrainConfig) -> FrameSplit:
    """ARCADE's own split when the folder has ``train/`` and ``val/``; else a seeded random one by run.
    Training frames without a single lesion are refused (a class-folder dataset, say)."""
    split = _split_frames(config)
    if not any(frame.lesions for frame in split.train):
        raise ConfigError(f"{config.data_dirs[0]}: no training frame has a lesion (COCO annotations.json or VOC "
                          ".xml boxes); a class-folder dataset trains with --task classify")
    return split


def _split_frames(config: TrainConfig) -> FrameSplit:
    if len(config.data_dirs) != 1:
        raise ConfigError("--task map trains on one folder of frames (COCO or VOC)")
    root = Path(config.data_dirs[0])
    if (root / "train").is_dir() and (root / "val").is_dir():
        test = load_frames(root / "test") if (root / "test").is_dir() else []
        return FrameSplit(load_frames(root / "train"), load_frames(root / "val"), test)
    frames = load_frames(root)
    groups = sorted({frame.group for frame in frames})
    order = np.random.default_rng(config.seed).permutation(len(groups))
    n_val = max(1, round(len(groups) * config.val_fraction))
    n_test = round(len(groups) * config.test_fraction)
    if len(groups) - n_val - n_test < 1:
        raise ConfigError(f"{root}: {len(groups)} frame group(s) cannot fill train, validation and test")
    val = {groups[i] for i in order[:n_val]}
    test = {groups[i] for i in order[n_val:n_val + n_test]}
    return FrameSplit([f for f in frames if f.group not in val | test], [f for f in frames if f.group in val],
                      [f for f in frames if f.group in test])


def frame_arrays(frames: Sequence[Frame], size: int, target: str) -> tuple[np.ndarray, np.ndarray]:
    """Every frame as model input (uint8, the device's decode and resize) and its target mask."""
    images = np.stack([load_image(frame.path, size) for frame in frames])
    masks = np.stack([frame.mask(size, size, target) for frame in frames])[..., None]
    return images, masks


def augment_pair(config: TrainConfig, seed: int):
    """A tf.data map: the same flip, turn and zoom for frame and mask, then exposure, contrast,
    gamma, noise and blur on the frame alone (what differs between hospitals' equipment)."""
    import tensorflow as tf

    size = config.image_size
    centre = (size - 1) / 2.0

    def apply(image, mask):
        image = tf.cast(image, tf.float32)
        mask = tf.cast(mask, tf.float32)
        both = tf.concat([image, mask], axis=-1)
        if config.flip:
            both = tf.image.random_flip_left_right(both)
            both = tf.image.random_flip_up_down(both)
        angle = tf.random.uniform((), -1.0, 1.0) * config.rotation * 2 * math.pi
        scale = tf.random.uniform((), 1.0 - config.zoom, 1.0 + config.zoom)
        cos, sin = tf.cos(angle) / scale, tf.sin(angle) / scale
        transform = tf.stack([cos, -sin, centre - cos * centre + sin * centre,
                              sin, cos, centre - sin * centre - cos * centre, 0.0, 0.0])
        both = tf.raw_ops.ImageProjectiveTransformV3(
            images=both[None], transforms=transform[None], output_shape=[size, size], fill_value=0.0,
            interpolation="BILINEAR", fill_mode="REFLECT")[0]
        image, mask = both[..., :3], tf.cast(both[..., 3:] > 0.5, tf.float32)
        return photometric(config, image), mask

    tf.random.set_seed(seed)
    return apply


def photometric(config: TrainConfig, image):
    """Exposure, contrast, gamma, noise and blur on a float frame (0..255), grey out: the part of
    :func:`augment_pair` that touches the frame alone (the centre head's augmentation shares it)."""
    import tensorflow as tf

    image = image + tf.random.uniform((), -1.0, 1.0) * config.brightness * 255.0
    mean = tf.reduce_mean(image)
    image = (image - mean) * tf.random.uniform((), 1.0 - config.contrast, 1.0 + config.contrast) + mean
    image = tf.clip_by_value(image, 0.0, 255.0)
    gamma = tf.exp(tf.random.uniform((), math.log(GAMMA_RANGE[0]), math.log(GAMMA_RANGE[1])))
    image = 255.0 * tf.pow(tf.maximum(image / 255.0, 1e-6), gamma)
    image = image + tf.random.normal(tf.shape(image)) * tf.random.uniform((), 0.0, NOISE_MAX)
    if tf.random.uniform(()) < 0.3:
        image = tf.nn.avg_pool2d(image[None], 3, 1, "SAME")[0]
    image = tf.image.grayscale_to_rgb(tf.reduce_mean(image, axis=-1, keepdims=True))  # frames are grey
    return tf.clip_by_value(image, 0.0, 255.0)


def datasets(config: TrainConfig, split: FrameSplit, log: Log):
    import tensorflow as tf

    started = time.monotonic()
    train_images, train_masks = frame_arrays(split.train, config.image_size, config.target)
    val_images, val_masks = frame_arrays(split.val, config.image_size, config.target)
    log(f"frames: {len(split.train)} train, {len(split.val)} validation, {len(split.test)} test, "
        f"decoded at {config.image_size} px in {time.monotonic() - started:.0f} s")
    train = (tf.data.Dataset.from_tensor_slices((train_images, train_masks))
             .shuffle(len(split.train), seed=config.seed, reshuffle_each_iteration=True)
             .map(augment_pair(config, config.seed), num_parallel_calls=tf.data.AUTOTUNE)
             .batch(config.batch_size).prefetch(tf.data.AUTOTUNE))
    val = (tf.data.Dataset.from_tensor_slices((val_images.astype(np.float32), val_masks.astype(np.float32)))
           .batch(config.batch_size))
    return train, val, val_images


def predict_maps(model, images: np.ndarray, batch_size: int = 8) -> np.ndarray:
    """The model's probability maps (N, H, W) for uint8 model inputs."""
    return np.concatenate([np.asarray(model(images[i:i + batch_size].astype(np.float32), training=False))[..., 0]
                           for i in range(0, len(images), batch_size)])


def area_options(map_size: int) -> tuple[int, ...]:
    """The minimum lesion areas (map pixels) the threshold search tries: :data:`MIN_AREA_FRACTIONS`
    of the map. ARCADE's F1 counts every false region as a 0, so the smallest ones matter."""
    return tuple(sorted({max(1, round(f * map_size * map_size)) for f in MIN_AREA_FRACTIONS}))


def choose_decoding(maps: np.ndarray, frames: Sequence[Frame], log: Log) -> tuple[float, int, dict]:
    """The threshold and minimum area of the best mean ARCADE F1 on validation (:data:`THRESHOLD_RULE`);
    ties go to the higher threshold and the larger area (fewer marks)."""
    outlines = truth_outlines(frames)
    table = {(t, a): score_maps(maps, frames, t, a, outlines=outlines).summary()
             for t in THRESHOLDS for a in area_options(maps.shape[1])}
    threshold, area = max(table, key=lambda key: (table[key]["arcade_f1"], key))
    best = table[(threshold, area)]
    log(f"decoding: {THRESHOLD_RULE} on validation -> threshold {threshold:.2f}, min area {area} map px "
        f"(F1 {best['arcade_f1']:.3f}, recall {best['recall']:.3f}, {best['false_per_frame']:.2f} false per frame)")
    return threshold, area, best


class StageState:
    """Which stages are done and the training time so far (``frame_state.json``), for ``--resume``:
    a run interrupted and resumed records the time of all its processes, not of the last one."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / STATE_FILE
        saved = json.loads(self.path.read_text()) if self.path.is_file() else {}
        self.done: dict[str, int] = {key: saved[key] for key in ("1", "2") if key in saved}
        self.before = float(saved.get("seconds", 0.0))  # what earlier processes spent
        self.started = time.monotonic()

    @property
    def seconds(self) -> float:
        return self.before + time.monotonic() - self.started

    def save(self) -> None:
        runs.write_json(self.path, {**self.done, "seconds": round(self.seconds, 1)})

    def mark(self, stage: int, epochs: int) -> None:
        self.done[str(stage)] = epochs
        self.save()


def fit_stage(model, config: TrainConfig, stage: int, train, val, run_dir: Path, state: StageState,
              epochs: int, learning_rate: float, verbose: int) -> int:
    """One stage, resumable: returns the epochs it ran."""
    import keras

    from artery_edge.trainer.frame_model import map_loss, set_encoder_trainable

    if str(stage) in state.done:
        model.load_weights(run_dir / BACKUP_DIR / f"stage{stage}.weights.h5")
        return state.done[str(stage)]
    set_encoder_trainable(model, stage == 2)
    steps = len(train)  # batches per epoch (the dataset's cardinality is known)
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, max(1, epochs * steps)) \
        if config.schedule == "cosine" else learning_rate
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss=map_loss)
    callbacks = [
        keras.callbacks.BackupAndRestore(str(run_dir / BACKUP_DIR / f"stage{stage}")),
        keras.callbacks.CSVLogger(str(run_dir / f"history_stage{stage}.csv"), append=True),
        keras.callbacks.LambdaCallback(on_epoch_end=lambda *_: state.save()),  # the time so far, each epoch
        keras.callbacks.EarlyStopping(patience=config.patience, restore_best_weights=True) if config.patience
        else keras.callbacks.Callback(),
    ]
    if config.tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(str(Path(config.log_dir) / run_dir.name / f"stage{stage}")))
    history = model.fit(train, validation_data=val, epochs=epochs, callbacks=callbacks, verbose=verbose)
    ran = len(history.history.get("loss", []))
    with atomic_path(run_dir / BACKUP_DIR / f"stage{stage}.weights.h5") as temp:
        staged = temp.with_name(temp.name + ".weights.h5")
        model.save_weights(staged)
        staged.replace(temp)
    state.mark(stage, ran)
    return ran


def write_split(path: Path, split: FrameSplit) -> None:
    """Every frame with its subset (CSV, as the classifier's run has), written atomically."""
    rows = io.StringIO()
    writer = csv.writer(rows)
    writer.writerow(["file", "subset"])
    writer.writerows((str(frame.path), name) for name in ("train", "val", "test") for frame in getattr(split, name))
    write_text(path, rows.getvalue())


def read_history(run_dir: Path) -> dict[str, list[float]]:
    history: dict[str, list[float]] = {}
    for stage in (1, 2):
        path = run_dir / f"history_stage{stage}.csv"
        if path.is_file():
            for row in csv.DictReader(path.open()):
                for key, value in row.items():
                    if key != "epoch":
                        history.setdefault(key, []).append(float(value))
    return history


def frame_parent(config: TrainConfig) -> Optional["Parent"]:
    """``--init-from`` a finished map run (longer training, a larger input): checked and loaded before
    the frames are read. Its width wins, as for the classifier."""
    ignored = [flag for flag, set_ in (("--replay", config.replay), ("--init-blend", config.init_blend < 1),
                                       ("--teacher", config.teachers)) if set_]
    if ignored:
        raise ConfigError(f"{', '.join(ignored)}: --task classify only (a map run starts from a map run's weights "
                          "as they are)")
    if not config.init_from:
        return None
    from artery_edge.trainer.parent import load_parent

    return load_parent(Path(config.init_from), task="map")


def train_frames(config: TrainConfig, log: Log, verbose: Optional[int], resume_dir: Optional[Path]):
    """The whole-frame recipe end to end; returns the classifier's :class:`RunResult` shape."""
    import keras

    from artery_edge.trainer.frame_model import build_frame_model
    from artery_edge.trainer.plots import plot_history

    if config.image_size % 32:
        raise ConfigError(f"--task map needs an image size that is a multiple of 32, found {config.image_size}")
    parent = frame_parent(config)
    if parent is not None and parent.alpha != config.alpha:
        log(f"alpha {parent.alpha:g}: the width of --init-from {parent.run.run_dir.name}")
        config = config.replace(alpha=parent.alpha)
    split = split_frames(config)
    keras.utils.set_random_seed(config.seed)
    model = build_frame_model(config)
    if parent is not None:  # fully convolutional: the weights fit any input size
        try:
            model.set_weights(parent.model.get_weights())
        except ValueError:
            raise ConfigError(f"--init-from {parent.run.run_dir}: its layers differ from this map model's") from None
        log(f"weights from {parent.run.run_dir.name} (its {parent.run.image_size} px map model)")
    if resume_dir is None:
        check_writable(Path(config.output_dir))
        run_dir = create_run_dir(Path(config.output_dir), config.run_name)
        runs.write_json(run_dir / runs.CONFIG_FILE, config.to_dict())
        write_split(run_dir / runs.SPLIT_FILE, split)
    else:
        run_dir = Path(resume_dir)
    log(f"run: {run_dir}")
    train, val, val_images = datasets(config, split, log)
    verbose = verbose if verbose is not None else (1 if sys.stderr.isatty() else 2)
    state = StageState(run_dir)
    stage1 = fit_stage(model, config, 1, train, val, run_dir, state, config.epochs, config.learning_rate, verbose) \
        if config.epochs else 0
    if config.fine_tune_epochs:
        fit_stage(model, config, 2, train, val, run_dir, state, config.fine_tune_epochs,
                  config.fine_tune_learning_rate, verbose)
    history = read_history(run_dir)
    if history:
        plot_history(history, stage1, run_dir / runs.HISTORY_PLOT)
    maps = predict_maps(model, val_images)
    threshold, area, val_scores = choose_decoding(maps, split.val, log)
    metrics = {"task": "map", "evaluated_on": "validation", "threshold": threshold,
               "operating_point": THRESHOLD_RULE, "min_area": area, **val_scores}
    if split.test:
        test_images, _ = frame_arrays(split.test, config.image_size, config.target)
        metrics["test"] = score_maps(predict_maps(model, test_images), split.test, threshold, area).summary()
    # the same layers in an uncompiled model: the file holds no optimizer state (a third of the size)
    runs.save_keras(keras.Model(model.inputs, model.outputs, name=model.name), run_dir / runs.MODEL_FILE)
    runs.write_json(run_dir / runs.METRICS_FILE, metrics)
    record = ModelRecord(labels=[LESION_LABEL], input_size=config.image_size, task="map", positive_label=LESION_LABEL,
                         threshold=threshold, operating_point=THRESHOLD_RULE, decoding={"min_area": area},
                         parent=parent.record() if parent is not None else {},
                         model_sha256=sha256_of_file(run_dir / runs.MODEL_FILE))
    runs.write_run(run_dir, record, target=config.target, seconds=round(state.seconds, 1),
                   frames={"train": len(split.train), "val": len(split.val), "test": len(split.test)})
    return RunResult(run_dir, metrics, history, stage1, state.seconds)
