"""The two-stage run: data -> frozen-base training -> fine-tuning -> test metrics and artefacts.

Everything is checked (config, weights, data, split) before the run directory is
created, so bad input never leaves a half-written run behind.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional

import numpy as np

from artery_edge.edge.decision import decide, positive_index
from artery_edge.edge.metadata import sha256_of_file
from artery_edge.edge.model_record import ModelRecord
from artery_edge.edge.progress import progress_bar
from artery_edge.trainer import multi_worker_patch
from artery_edge.trainer import runs
from artery_edge.trainer.config import ConfigError, TrainConfig, changed_options, refuse_options_on_resume
from artery_edge.trainer.distillation import check_teacher_classes, load_teachers, mixed_targets, one_hot, teacher_targets, \
    teachers_record
from artery_edge.trainer.metrics import binary_metrics, confusion_matrix
from artery_edge.trainer.pipeline import load_arrays, make_dataset
from artery_edge.trainer.runs import RunResult, TrainedRun, check_writable, create_run_dir
from artery_edge.trainer.samples import SUBSETS, DataError, Sample, subset
from artery_edge.trainer.scan import common_root, scan_dataset
from artery_edge.trainer.split_files import read_split, split_class_names, split_from_file, write_split
from artery_edge.trainer.splits import group_split, pattern_split, sort_split, stratified_split

if TYPE_CHECKING:
    from artery_edge.trainer.parent import Parent

Log = Callable[[str], None]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def test_metrics(probabilities: np.ndarray, labels: np.ndarray, class_names: list[str], loss: float,
                 threshold: Optional[float] = None) -> dict:
    """Metrics of the test split, decided by ``edge.decision.decide`` at ``threshold``."""
    predicted = decide(probabilities, threshold, positive_index(class_names))
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
    from artery_edge.trainer.model import AUGMENTATION
    from artery_edge.trainer.plots import plot_image_grid

    rng = np.random.default_rng(config.seed)
    chosen = [samples[i] for i in rng.permutation(len(samples))[: config.sample_grid_size]]
    images, labels = load_arrays(chosen, config.image_size)
    titles = [class_names[label] for label in labels]
    plot_image_grid(images, titles, run_dir / runs.SAMPLES_PLOT, "training samples")
    augmented = model.get_layer(AUGMENTATION)(images.astype("float32"), training=True)
    plot_image_grid(np.asarray(augmented), titles, run_dir / runs.AUGMENTED_PLOT, "augmented (same images)")


def stage_callbacks(config: TrainConfig, run_dir: Path, tb_dir: Path, state, chief: bool
                    ) -> Callable[[int], list]:
    """Per stage: a (resumable) EarlyStopping and a BackupAndRestore of its own; the best-model
    checkpoint, CSV history and TensorBoard span both stages (TensorBoard on the chief only)."""
    import keras

    from artery_edge.trainer.resume import BestModel, ResumableEarlyStopping, SaveState

    # best.keras written atomically; a resumed run keeps its best
    checkpoint = BestModel(run_dir / runs.BEST_MODEL_FILE, state.data.get("checkpoint_best"))
    csv_log = keras.callbacks.CSVLogger(str(run_dir / runs.HISTORY_CSV), append=True)

    def for_stage(stage: int) -> list:
        found = [ResumableEarlyStopping(state, stage, monitor="val_loss", patience=config.patience,
                                        restore_best_weights=True),
                 checkpoint, csv_log, SaveState(state, checkpoint),
                 keras.callbacks.BackupAndRestore(str(state.stage_dir(stage)), double_checkpoint=True)]
        if config.tensorboard and chief:
            found.append(keras.callbacks.TensorBoard(log_dir=str(tb_dir), profile_batch=0))
        return found

    return for_stage


def fit_two_stages(model, config: TrainConfig, train_ds, val_ds, callbacks: Callable[[int], list], state,
                   log: Log, verbose: int, learning_rate_scale: float = 1.0,
                   weights: Optional[dict[int, float]] = None) -> int:
    """Stage 1 (frozen base) then stage 2 (fine-tuning), epochs numbered on; returns how many
    epochs stage 1 ran (EarlyStopping may end it early). A resumed run skips a finished stage
    and continues an unfinished one where its backup left it."""
    from artery_edge.trainer.model import compile_model, learning_rate_schedule, set_stage
    from artery_edge.trainer.resume import truncate_history

    done = 0
    steps_per_epoch = max(1, int(train_ds.cardinality()))  # -1 infinite / -2 unknown: the schedule's unit is 1 step
    stages = ((1, config.epochs, config.learning_rate), (2, config.fine_tune_epochs, config.fine_tune_learning_rate))
    for stage, epochs, lr in stages:
        if epochs == 0:
            continue
        if state.stage_done(stage) is not None:
            done = state.stage_done(stage)
            state.load_end_weights(stage, model)
            log(f"stage {stage}: finished before the interruption ({done} epochs so far), skipped")
            continue
        set_stage(model, stage, config.fine_tune_at, config.pretrained)
        schedule = learning_rate_schedule(lr * learning_rate_scale, epochs, steps_per_epoch, config)
        compile_model(model, schedule, config)  # recompile: `trainable` counts after it
        trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
        what = "fine-tuning" if stage == 2 else "frozen base" if config.pretrained else \
            "from scratch (--weights none): whole network trains"
        resumed_at = state.restored_epoch(stage, done)
        truncate_history(state.folder.parent / runs.HISTORY_CSV, resumed_at)
        shape = f" ({config.schedule}, warm-up {config.warmup_epochs:g} epochs)" if config.schedule != "constant" else ""
        log(f"stage {stage}: {what}, lr {lr * learning_rate_scale:g}{shape}, {trainable:,} trainable parameters"
            + (f"; resuming at epoch {resumed_at + 1}" if resumed_at > done else ""))
        multi_worker_patch.prebuild(model, train_ds)
        done = resumed_at + fit_stage(model, train_ds, val_ds, done, done + epochs, callbacks(stage), verbose, weights)
        state.mark_done(stage, done, model)
    return state.stage_done(1) or 0


def fit_stage(model, train_ds, val_ds, first_epoch: int, end_epoch: int, callbacks: list, verbose: int,
              weights: Optional[dict[int, float]] = None) -> int:
    """One stage's ``fit`` over epochs [first_epoch, end_epoch) (its BackupAndRestore may move the
    start on); returns how many epochs it ran."""
    from artery_edge.trainer.resume import forget_restored_epoch

    forget_restored_epoch(model)
    with warnings.catch_warnings():  # Keras warns that a tf.data input ignores shuffle=True
        warnings.filterwarnings("ignore", message=".*shuffle=True.*")
        fit = model.fit(train_ds, validation_data=val_ds, initial_epoch=first_epoch, epochs=end_epoch,
                        callbacks=callbacks, verbose=verbose, class_weight=weights)
    return len(fit.history.get("loss", []))


def choose_split(samples: list, config: TrainConfig, data_dir: Path, log: Log) -> list:
    """A predefined split file, a published split by file name, a split by group, or (default)
    the stratified random split."""
    if config.split_pattern:
        fractions = {"validation": config.val_fraction, "test": config.test_fraction}
        return pattern_split(samples, config.split_pattern, fractions, config.seed, config.group_pattern)
    if config.split_file:
        assigned, unlisted = split_from_file(samples, Path(config.split_file), data_dir)
        if unlisted:
            log(f"warning: {unlisted} file(s) of the dataset are not in {config.split_file}: left out")
        return assigned
    if config.group_pattern:
        assigned = group_split(samples, config.group_pattern, config.val_fraction, config.test_fraction,
                                       config.seed)
        counts = {name: len({s.group for s in assigned if s.subset == name}) for name in SUBSETS}
        log("groups per subset: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        return assigned
    return stratified_split(samples, config.val_fraction, config.test_fraction, config.seed)


def resumed_split(config: TrainConfig, run_dir: Path) -> tuple[list[str], list, Path]:
    """Class names, samples and data root of an interrupted run; its images must all still be
    where it found them (a moved data folder is one error line, not a crash inside tf.data)."""
    data_dir = common_root(config.data_dirs)
    class_names = split_class_names(run_dir / runs.SPLIT_FILE)
    samples = read_split(run_dir / runs.SPLIT_FILE, data_dir, class_names)
    missing = [s.path for s in samples if not s.path.is_file()]
    if missing:
        raise DataError(f"cannot resume {run_dir}: {len(missing)} of its {len(samples)} images are not "
                                f"where it trained (e.g. {missing[0]}); was {data_dir} moved or changed?")
    return class_names, samples, data_dir


def check_fine_tune_at(model, config: TrainConfig) -> None:
    """``fine_tune_at`` past the base's last layer would fine-tune nothing of it in stage 2."""
    from artery_edge.trainer.model import base_of

    layers = len(base_of(model).layers)
    if config.fine_tune_epochs and config.pretrained and config.fine_tune_at >= layers:
        raise ConfigError(f"fine-tune-at {config.fine_tune_at} is past the base's last layer ({layers - 1}): "
                          "stage 2 would train nothing of it")


def class_weights(samples: list, n_classes: int, how: str) -> Optional[dict[int, float]]:
    """``balanced``: n / (k * n_c) per class over the training split (Keras' class_weight)."""
    if how == "none":
        return None
    counts = np.bincount([s.label for s in samples], minlength=n_classes)
    return {c: float(len(samples) / (n_classes * counts[c])) for c in range(n_classes) if counts[c]}


def logits_of(model, dataset) -> np.ndarray:
    """Every row of ``dataset``, in order: the model called batch by batch. ``predict`` under
    MirroredStrategy can lose rows of an uneven last batch (seen in CI: 29 logits for 30 labels)."""
    import tensorflow as tf

    call = tf.function(lambda images: model(images, training=False), reduce_retracing=True)
    return np.concatenate([np.asarray(call(batch[0])) for batch in dataset])


def calibrate(model, val_ds, test_ds, split: dict, log: Log, evaluated_on: str) -> dict:
    """Fit the temperature on the validation split; the evaluated split's (``split["test"]``: the
    test split, or the validation split when there is none) calibrated probabilities and its
    expected calibration error before and after (15 bins), named as the split it is."""
    from artery_edge.trainer.calibration import expected_calibration_error, fit_temperature, softmax
    from artery_edge.trainer.model import serving_model

    logits_model = serving_model(model, logits=True)
    val_labels = np.array([s.label for s in split["validation"]])
    val_logits = logits_of(logits_model, val_ds)
    temperature = fit_temperature(val_logits, val_labels)
    test_logits = logits_of(logits_model, test_ds)
    test_labels = np.array([s.label for s in split["test"]])
    before = expected_calibration_error(softmax(test_logits), test_labels)
    probabilities = softmax(test_logits, temperature)
    after = expected_calibration_error(probabilities, test_labels)
    log(f"calibration: temperature {temperature:.3f} (fitted on validation); {evaluated_on} ECE {before:.4f} -> "
        f"{after:.4f}" + (" (no test split: measured where it was fitted)" if evaluated_on == "validation" else ""))
    return {"temperature": round(temperature, 6), "ece_uncalibrated": before, "ece": after,
            "test_probabilities": probabilities, "validation_probabilities": softmax(val_logits, temperature)}


def operating_point(probabilities: np.ndarray, labels: np.ndarray, class_names: list[str], rule: str,
                    log: Log) -> Optional[float]:
    """The threshold ``rule`` picks on the validation split (two classes; None otherwise)."""
    from artery_edge.trainer.operating_point import choose_threshold

    if len(class_names) != 2:
        return None
    positive = positive_index(class_names)
    threshold = choose_threshold(labels == positive, probabilities[:, positive], rule)
    log(f"operating point: {rule} on validation -> threshold {threshold:.4f} on p({class_names[positive]})")
    return threshold


def train(config: Optional[TrainConfig], log: Log = _stderr, verbose: Optional[int] = None,
          resume_dir: Optional[Path] = None) -> RunResult:
    """Run the full recipe and return where it landed and its test metrics.

    The run folder is locked while it trains (:func:`trainer.runs.locked`). Keras' global dtype
    policy (``--mixed-precision`` sets it) is restored afterwards, so models built later in the
    same process are float32 again.

    Args:
        config: the recipe (checked before any work: a bad value leaves no run); None with
            ``resume_dir``.
        log: where progress lines go (default: stderr).
        verbose: Keras' ``fit`` verbosity (None: a progress bar on a terminal, one line per
            epoch otherwise).
        resume_dir: continue that interrupted run with its own config and split (``config``:
            None, or one that changes nothing; a changed option is refused, not ignored).
    """
    import keras

    previous = keras.mixed_precision.global_policy()
    try:
        with contextlib.ExitStack() as held:
            if resume_dir is not None:
                refuse_options_on_resume(changed_options(config), resume_dir)
                config = runs.resumable_run(resume_dir)
                held.enter_context(runs.locked(resume_dir))
                from artery_edge.trainer.resume import RunState

                RunState(resume_dir)  # a damaged state file is refused before any work
            if config.task == "map":
                from artery_edge.trainer.frame_training import train_frames

                return train_frames(config.validate(), log, verbose, resume_dir)
            return _train(config, log, verbose, resume_dir, held)
    finally:
        keras.mixed_precision.set_global_policy(previous)


@dataclass
class RunData:
    """What a run trains and is measured on: its classes, its samples (each with its subset),
    the folder its split file is relative to, and the files the scan skipped."""

    class_names: list[str]
    samples: list[Sample]
    data_dir: Path
    skipped: list[str]

    @property
    def split(self) -> dict[str, list[Sample]]:
        return {name: subset(self.samples, name) for name in SUBSETS}


def check_before_work(config: TrainConfig, log: Log) -> tuple[TrainConfig, Optional[Parent], list[TrainedRun]]:
    """Every option, the devices, the weights, the parent run (``--init-from``, loaded) and the
    teachers (``--teacher``), in that order and before the data scan; returns the config (the
    parent's alpha), the parent and the teachers."""
    from artery_edge.trainer.distribute import check_devices, check_request
    from artery_edge.trainer.model import resolve_weights

    config.validate()
    check_request(config)
    if config.strategy == "mirrored":
        check_devices(config)  # before the data scan, and before any strategy exists
    parent = None
    if config.init_from:  # a run to start from: checked (and loaded) before the data scan
        from artery_edge.trainer.parent import blend_target, load_parent

        parent = load_parent(Path(config.init_from))
        if config.alpha != parent.alpha:
            log(f"alpha {parent.alpha:g}: the width of --init-from {parent.run.run_dir.name}")
            config = config.replace(alpha=parent.alpha)
        if config.init_blend < 1:
            config = config.replace(weights=blend_target(parent))
    resolve_weights(config)  # a bad weights option fails before the data scan
    teachers = load_teachers(config.teachers) if config.teachers else []
    return config, parent, teachers


def gather_samples(config: TrainConfig, resume_dir: Optional[Path], parent: Optional[Parent], log: Log) -> RunData:
    """A new run scans and splits its folders (plus the parent's replay images); a resumed run
    reads its own split back."""
    if resume_dir is None:
        with progress_bar("checking images") as progress:
            scanned = scan_dataset(config.data_dirs, progress=progress)
        data = RunData(scanned.class_names, choose_split(scanned.samples, config, scanned.root, log),
                       scanned.root, scanned.skipped)
    else:
        data = RunData(*resumed_split(config, Path(resume_dir)), skipped=[])
    for message in data.skipped:
        log(f"warning: skipping {message}")
    if parent is not None:
        from artery_edge.trainer.parent import check_classes, replay_samples

        check_classes(parent, data.class_names)
        if config.replay and resume_dir is None:
            data.samples = sort_split(data.samples + replay_samples(parent, config.replay, config.seed))
            log(f"replay: {config.replay} training images per class from {parent.run.run_dir.name} mixed in")
    log(f"classes {data.class_names}; " + ", ".join(f"{k}: {len(v)}" for k, v in data.split.items()))
    check_validation_classes(data, config)
    return data


def check_validation_classes(data: RunData, config: TrainConfig) -> None:
    """The validation split chooses the temperature and the threshold: with a class missing there,
    the ``operating_point`` rule has nothing to weigh (a one-class "youden" reports accuracy 1.0
    and a threshold nothing chose), so such a split is refused before any training."""
    present = {s.label for s in data.split["validation"]}
    missing = [name for label, name in enumerate(data.class_names) if label not in present]
    if data.split["validation"] and missing:
        raise DataError(f"the validation split has no image of {', '.join(missing)}: the temperature and the "
                        f"{config.operating_point} threshold are chosen on it, so it needs images of every class")


def build_on_strategy(config: TrainConfig, class_names: list[str], parent: Optional[Parent], log: Log):
    """The distribution strategy and the model built under it (the parent's weights copied in);
    the precision policy and the seed are set first."""
    import keras

    from artery_edge.trainer.distribute import make_strategy
    from artery_edge.trainer.model import build_model

    strategy = make_strategy(config, log)
    if config.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")
    keras.utils.set_random_seed(config.seed)
    with strategy.scope():
        model = build_model(len(class_names), config)  # may download ImageNet weights: before the run exists
        check_fine_tune_at(model, config)
        if parent is not None:
            from artery_edge.trainer.parent import copy_weights

            head = copy_weights(parent, model, config.init_blend)
            log(f"weights from {parent.run.run_dir} (model.keras sha256 {parent.model_sha256[:12]}...)"
                + (f"; base blended {config.init_blend:g} parent + {1 - config.init_blend:g} {config.weights}"
                   if config.init_blend < 1 else "")
                + ("" if head else f"; the head starts afresh (--cut-at {config.cut_at} changes its input)"))
    return strategy, model


def open_run_dir(config: TrainConfig, data: RunData, resume_dir: Optional[Path], chief: bool,
                 held: contextlib.ExitStack, log: Log) -> tuple[Path, TrainConfig]:
    """Where this process writes: a resumed run's folder, a new locked one with its config and
    split (folders resolved), or a temporary folder on a worker that is not the chief."""
    if not chief:  # the multi-worker guide's pattern: other workers write to a temporary folder
        return Path(tempfile.mkdtemp(prefix="artery-edge-worker-")), config
    if resume_dir is not None:
        log(f"resuming {Path(resume_dir)}")
        return Path(resume_dir), config
    for folder in [Path(config.output_dir)] + ([Path(config.log_dir)] if config.tensorboard else []):
        check_writable(folder)
    run_dir = create_run_dir(Path(config.output_dir), config.run_name)
    held.enter_context(runs.locked(run_dir))
    config = config.replace(data_dirs=[str(Path(d).resolve()) for d in config.data_dirs],
                            split_file=str(Path(config.split_file).resolve()) if config.split_file else "",
                            teachers=[str(Path(t).resolve()) for t in config.teachers])
    log(f"run directory: {run_dir}")
    runs.write_json(run_dir / runs.CONFIG_FILE, config.to_dict())
    write_split(run_dir / runs.SPLIT_FILE, data.samples, data.data_dir, data.class_names)
    return run_dir, config


def make_datasets(split: dict[str, list[Sample]], config: TrainConfig, global_batch: int, log: Log,
                  train_targets: Optional[np.ndarray] = None):
    """Train, validation and evaluation datasets, and the subset evaluated. Without a test split
    (--test-fraction 0, e.g. a site's published train/validation files only) the figures are the
    validation split's, which chose the epochs, temperature and threshold. With ``train_targets``
    (distillation) every dataset yields (N, n_classes) targets: the mixed ones for training,
    one-hot labels elsewhere (one loss and one accuracy metric for both)."""
    def build(samples: list[Sample]):
        targets = None if train_targets is None else one_hot([s.label for s in samples], train_targets.shape[1])
        return make_dataset(samples, config.image_size, global_batch, targets=targets)

    train_ds = make_dataset(split["train"], config.image_size, global_batch, shuffle=True, seed=config.seed,
                            targets=train_targets)
    val_ds = build(split["validation"])
    evaluated_on = "test" if split["test"] else "validation"
    if evaluated_on == "validation":
        log("no test split: the figures below are on the validation split that tuned the run (optimistic)")
    return train_ds, val_ds, build(split[evaluated_on]), evaluated_on


def distillation_targets(config: TrainConfig, teachers: list[TrainedRun], run_dir: Path,
                         train: list[Sample], log: Log) -> Optional[np.ndarray]:
    """The training split's mixed targets (labels and the teachers' ensemble), or None without teachers."""
    if not teachers:
        return None
    with progress_bar(f"teachers ({len(teachers)}) on {len(train):,} training images") as progress:
        ensemble = teacher_targets(run_dir, train, teachers, progress=progress)
    labels = np.array([s.label for s in train], dtype=int)
    agree = float(np.mean(ensemble.argmax(axis=1) == labels)) if len(train) else 0.0
    log(f"distillation: {len(teachers)} teacher(s), weight {config.teacher_weight:g}; the ensemble agrees with "
        f"{agree:.1%} of the training labels")
    return mixed_targets(labels, ensemble, config.teacher_weight)


def final_metrics(model, val_ds, test_ds, evaluated_on: str, data: RunData, config: TrainConfig, log: Log) -> dict:
    """The evaluated subset's metrics after temperature scaling, at the threshold the operating
    point picks on validation."""
    split = data.split
    loss = model.evaluate(test_ds, verbose=0)[0]
    calibration = calibrate(model, val_ds, test_ds, {**split, "test": split[evaluated_on]}, log, evaluated_on)
    threshold = operating_point(calibration.pop("validation_probabilities"),
                                np.array([s.label for s in split["validation"]]), data.class_names,
                                config.operating_point, log)
    labels = np.array([s.label for s in split[evaluated_on]])
    metrics = test_metrics(calibration.pop("test_probabilities"), labels, data.class_names, loss, threshold)
    metrics.update(calibration, threshold=threshold, operating_point=config.operating_point, evaluated_on=evaluated_on)
    return metrics


def write_run_record(run_dir: Path, config: TrainConfig, data: RunData, metrics: dict, stage1_epochs: int, strategy,
                     resumed: bool, tb_dir: Path, parent: Optional[Parent], teachers: list[TrainedRun]) -> None:
    """``run.json``: the model's record and how the run trained, for readers without TensorFlow."""
    import keras

    from artery_edge.trainer.distribute import describe

    replicas = strategy.num_replicas_in_sync
    names = data.class_names
    record = ModelRecord(
        labels=list(names), input_size=config.image_size, positive_label=names[positive_index(names)],
        threshold=metrics["threshold"], operating_point=config.operating_point, temperature=metrics["temperature"],
        parent=parent.record() if parent is not None else {},
        model_sha256=sha256_of_file(run_dir / runs.MODEL_FILE))  # what readers check the file against
    runs.write_run(
        run_dir, record,
        counts={k: len(v) for k, v in data.split.items()},
        skipped=data.skipped,
        stage1_epochs=stage1_epochs,
        strategy=describe(strategy),
        replicas=replicas,
        global_batch_size=config.batch_size * replicas,
        mixed_precision=config.mixed_precision,
        resumed=resumed or None,
        tensorboard_dir=str(tb_dir) if config.tensorboard else None,
        keras_version=keras.__version__,
        teachers=teachers_record(teachers, config.teacher_weight) if teachers else None,
    )


def _train(config: TrainConfig, log: Log, verbose: Optional[int], resume_dir: Optional[Path],
           held: contextlib.ExitStack) -> RunResult:
    from artery_edge.trainer.distribute import is_chief
    from artery_edge.trainer.plots import plot_history
    from artery_edge.trainer.resume import RunState, read_history

    start = time.perf_counter()
    config, parent, teachers = check_before_work(config, log)
    data = gather_samples(config, resume_dir, parent, log)
    check_teacher_classes(teachers, data.class_names)
    strategy, model = build_on_strategy(config, data.class_names, parent, log)
    chief, replicas = is_chief(strategy), strategy.num_replicas_in_sync
    run_dir, config = open_run_dir(config, data, resume_dir, chief, held, log)
    split = data.split
    train_ds, val_ds, test_ds, evaluated_on = make_datasets(
        split, config, config.batch_size * replicas, log,
        distillation_targets(config, teachers, run_dir, split["train"], log))
    weights = class_weights(split["train"], len(data.class_names), config.class_weight)
    if weights:
        log("class weights (balanced): " + ", ".join(f"{data.class_names[c]} {w:.3f}" for c, w in weights.items()))
    if chief and resume_dir is None:
        _sample_grids(model, split["train"], config, data.class_names, run_dir)
    state = RunState(run_dir)
    tb_dir = Path(state.data.setdefault("tensorboard_dir", str(
        Path(config.log_dir) / datetime.now().strftime("%Y%m%d-%H%M%S"))))
    verbose = verbose if verbose is not None else (1 if sys.stderr.isatty() else 2)
    with strategy.scope():
        stage1_epochs = fit_two_stages(model, config, train_ds, val_ds,
                                       stage_callbacks(config, run_dir, tb_dir, state, chief), state, log, verbose,
                                       replicas if config.scale_learning_rate else 1, weights)

    runs.save_keras(model, run_dir / runs.MODEL_FILE)
    metrics = final_metrics(model, val_ds, test_ds, evaluated_on, data, config, log)
    seconds = time.perf_counter() - start
    metrics["train_seconds"] = round(seconds, 1)
    history = read_history(run_dir / runs.HISTORY_CSV)
    if not chief:
        shutil.rmtree(run_dir, ignore_errors=True)
        return RunResult(run_dir, metrics, history, stage1_epochs, seconds)
    runs.write_json(run_dir / runs.METRICS_FILE, metrics)
    runs.write_json(run_dir / runs.HISTORY_JSON, {"stage1_epochs": stage1_epochs, **history})
    write_run_record(run_dir, config, data, metrics, stage1_epochs, strategy, resume_dir is not None, tb_dir, parent,
                     teachers)
    shutil.rmtree(state.folder, ignore_errors=True)  # the run finished: its backups are spent
    plot_history(history, stage1_epochs, run_dir / runs.HISTORY_PLOT)
    return RunResult(run_dir, metrics, history, stage1_epochs, seconds)
