"""Keras model -> self-describing .tflite files, one per precision of the registry.

What is converted is the serving graph (no augmentation); its input is raw RGB 0..255 at
the trained size because normalisation lives inside the model. INT8's calibration images
come from the run's training split, decoded and resized by the training function.
Every file is written to a temporary name and renamed, so a failure leaves nothing.
What each precision does is in :mod:`converters.presets`; the options in :mod:`converters.options`.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from artery_edge.edge.version import __version__
from artery_edge.converters.metadata_writer import embed_metadata
from artery_edge.converters.options import ConversionError, ConvertOptions
from artery_edge.converters.presets import PRESETS, ExportJob, float32_once
from artery_edge.converters.saved_model import SavedModels
from artery_edge.edge.precisions import FLOAT_REFERENCE, PRECISIONS
from artery_edge.edge.imaging import load_image
from artery_edge.edge import atomic
from artery_edge.edge.errors import ArteryEdgeError
from artery_edge.edge.metadata import ModelMetadata, read_metadata, sha256_of_file
from artery_edge.edge.model_record import ModelRecord
from artery_edge.edge.provenance import RunIdentity, check_keras, check_labels, check_recorded_model
from artery_edge.edge.decision import positive_index
from artery_edge.edge.progress import progress_bar
from artery_edge.trainer.config import recipe
from artery_edge.trainer.runs import MODEL_FILE, RUN_FILE, TrainedRun, load_keras_model as load_keras_file, load_run
from artery_edge.trainer.samples import DataError, Sample, subset
from artery_edge.trainer.scan import scan_dataset


@dataclass
class ConvertedModel:
    precision: str
    path: str
    bytes: int
    seconds: float
    ratio_to_float32: Optional[float] = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class ConversionSource:
    """A Keras model file and what is known about how it was trained."""

    model_path: Path
    run: Optional[TrainedRun]

    @classmethod
    def resolve(cls, path: Path) -> "ConversionSource":
        path = Path(path)
        if not path.exists():
            raise ConversionError(f"{path} does not exist")
        if path.is_dir():
            return cls(path / MODEL_FILE, load_run(path))
        run = load_run(path.parent) if path.name == MODEL_FILE and (path.parent / RUN_FILE).is_file() else None
        return cls(path, run)


def load_keras_model(path: Path, temperature: float = 1.0):
    """Load a Keras model and check it takes one square RGB image; return its serving graph
    (for one of our training models: divided by ``temperature`` before the softmax)."""
    from artery_edge.trainer.model import AUGMENTATION, float32_twin, is_float32, serving_model

    if path.suffix not in (".keras", ".h5"):
        raise ConversionError(f"{path} is not a Keras model file (.keras or .h5)")
    model = load_keras_file(path)
    shape = tuple(model.input_shape) if not isinstance(model.input_shape, list) else ()
    if len(shape) != 4 or shape[3] != 3 or shape[1] is None or shape[1] != shape[2]:
        raise ConversionError(f"{path}: input must be one square RGB image tensor (None, S, S, 3), found {model.input_shape}")
    has_augmentation = any(layer.name == AUGMENTATION for layer in model.layers)
    if has_augmentation:
        return serving_model(model, temperature)
    return model if is_float32(model) else float32_twin(model)


def calibration_samples(samples: Sequence[Sample], count: int, seed: int = 0) -> list[Sample]:
    """``count`` samples, stratified by class in proportion, reproducibly chosen."""
    rng = np.random.default_rng(seed)
    labels = sorted({s.label for s in samples})
    chosen: list[Sample] = []
    for i, label in enumerate(labels):
        pool = [s for s in samples if s.label == label]
        remaining = count - len(chosen)
        share = remaining if i == len(labels) - 1 else round(count * len(pool) / len(samples))
        chosen += [pool[j] for j in rng.permutation(len(pool))[: min(share, len(pool))]]
    return chosen


def build_calibration_images(
    source: ConversionSource, count: int, image_size: int, data_dir: Optional[Path] = None
) -> np.ndarray:
    """Decode the calibration images (training split, or ``data_dir``), exactly as in training."""
    if data_dir is None and source.run is not None and source.run.task == "map":
        return calibration_frames(source.run, count, image_size)
    if data_dir is not None:
        try:
            samples = scan_dataset(Path(data_dir)).samples
        except DataError as exc:
            raise ConversionError(f"calibration data: {exc}") from None
    elif source.run is not None:
        samples = subset(source.run.split(), "train")
    else:
        raise ConversionError("INT8 needs calibration images: pass --calibration-data DIR (class folders)")
    if not samples:
        raise ConversionError("the calibration set is empty")
    chosen = calibration_samples(samples, count)
    images = []
    with progress_bar("calibration images") as progress:
        for done, sample in enumerate(chosen, 1):
            try:
                images.append(load_image(sample.path, image_size))
            except Exception as exc:
                raise ConversionError(
                    f"calibration images cannot be built: {exc} (moved data? use --calibration-data DIR)"
                ) from None
            progress(done, len(chosen))
    return np.stack(images)


def calibration_frames(run: TrainedRun, count: int, image_size: int) -> np.ndarray:
    """A whole-frame run's calibration set: ``count`` of its training frames, reproducibly
    chosen, decoded as in training (the split is recomputed from its config, as ``--resume`` does)."""
    from artery_edge.trainer.frame_training import split_frames

    try:
        frames = split_frames(run.config).train
    except ArteryEdgeError as exc:
        raise ConversionError(f"calibration frames: {exc}") from None
    chosen = [frames[i] for i in np.random.default_rng(0).permutation(len(frames))[:count]]
    images = []
    with progress_bar("calibration frames") as progress:
        for done, frame in enumerate(chosen, 1):
            images.append(load_image(frame.path, image_size))
            progress(done, len(chosen))
    return np.stack(images)


def graph_threshold(run, temperature: float) -> Optional[float]:
    """The run's threshold (chosen on calibrated probabilities) for a graph with ``temperature``.
    Two classes: p = sigmoid(dz / T), so p_cal >= t  <=>  p_T >= sigmoid(T_run * logit(t) / T)."""
    if run is None or run.threshold is None:
        return None
    t = min(max(run.threshold, 1e-12), 1 - 1e-12)
    return float(1 / (1 + np.exp(-run.temperature * np.log(t / (1 - t)) / temperature)))


def trained_image_sizes(run: TrainedRun) -> Optional[list[int]]:
    """[shortest side, longest side] of the run's training images (headers only): the device
    notes an image far outside it (``edge.classifier.size_note``). None when the files are gone."""
    from PIL import Image

    sides = []
    try:
        samples = subset(run.split(), "train")
    except DataError:
        return None
    for sample in samples:
        try:
            with Image.open(sample.path) as image:
                sides.append(image.size)
        except OSError:
            continue
    return [min(min(side) for side in sides), max(max(side) for side in sides)] if sides else None


def build_metadata(source: ConversionSource, image_size: int, labels: Sequence[str], precision: str = "") -> ModelMetadata:
    """Everything but the precision is shared by the variants of one conversion (one hash of the source):
    a run's record (task, decoding, parent...) with its training summary, or a bare model's labels."""
    labels = list(labels)
    if source.run is None:
        record = ModelRecord(labels=labels, input_size=image_size, positive_label=labels[positive_index(labels)])
    else:
        run = source.run
        training = {**recipe(run.config), "test_accuracy": run.metrics.get("accuracy"),
                    "data_dir": " + ".join(Path(folder).name for folder in run.config.data_dirs)}
        if run.task == "classify":
            training["image_sizes"] = trained_image_sizes(run)
        record = run.record.replace(labels=labels, input_size=image_size, training=training)
    return ModelMetadata.of(record.replace(model_sha256=sha256_of_file(source.model_path)), precision=precision,
                            artery_edge_version=__version__,
                            created=datetime.now(timezone.utc).isoformat(timespec="seconds"))


def write_models(files: dict[Path, bytes], overwrite: bool) -> None:
    """Each file written atomically (``edge.atomic``); without ``overwrite`` one that appeared
    meanwhile (another process) is never replaced. If a write fails, the files this call wrote
    before it are removed again: a conversion leaves all its files or none of its new ones."""
    written: list[Path] = []
    try:
        for path, data in files.items():
            existed = path.exists()
            try:
                atomic.write_bytes(path, data, overwrite=overwrite)
            except FileExistsError:
                raise ConversionError(f"refusing to overwrite {path}, created meanwhile (use --force)") from None
            if not existed:
                written.append(path)
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Remove the temporary files of conversions killed with -9 (``edge.atomic.remove_stale``)."""
    return [t for p in PRECISIONS.values() for t in atomic.remove_stale(folder, p.file_name)]


def size_ratios(results: list[ConvertedModel], out_dir: Path, source_sha256: str) -> None:
    """Each file's size against the float32 file beside it, when that one is the same model's
    twin (a float32 file left there by another model's conversion is not a reference)."""
    reference = FLOAT_REFERENCE.file(out_dir)
    if not reference.is_file():
        return
    try:
        twin = read_metadata(reference)
    except ArteryEdgeError:  # damaged or not a model: no reference
        return
    if twin is not None and twin.model_sha256 == source_sha256:
        for result in results:
            result.ratio_to_float32 = round(result.bytes / reference.stat().st_size, 4)


def convert(source_path: Path, options: Optional[ConvertOptions] = None) -> list[ConvertedModel]:
    """Convert a run (or a .keras file) to the asked precisions; return what was written.

    Args:
        source_path: a run directory (its model, classes, temperature, threshold and training
            split) or a Keras model file (then ``options.labels`` names the classes).
        options: what to write and how; checked when built (``ConvertOptions()``: int8 only).
    """
    options = options or ConvertOptions()
    source = ConversionSource.resolve(source_path)
    out_dir = Path(options.out_dir) if options.out_dir else source.model_path.parent
    targets = {p: PRECISIONS[p].file(out_dir) for p in options.precisions}
    existing = [str(t) for t in targets.values() if t.exists()]
    if existing and not options.force:
        raise ConversionError(f"refusing to overwrite {', '.join(existing)} (use --force)")
    if source.run is not None:  # the run's model.keras must be the one it finished with (run.json's hash)
        check_recorded_model(source.model_path, RunIdentity.of(source.run), source.run.model_sha256)
    if source.run is not None and options.labels:
        check_labels(options.labels, RunIdentity.of(source.run))
    class_names = list(options.labels) if options.labels else (source.run.class_names if source.run else None)
    if not class_names:
        raise ConversionError("class names unknown: convert a run directory or pass --labels A,B")

    temperature = source.run.temperature if options.apply_temperature and source.run is not None else 1.0
    model = load_keras_model(source.model_path, temperature)
    image_size = int(model.input_shape[1])
    if source.run is not None:
        check_keras(source.model_path, image_size, int(model.output_shape[-1]), RunIdentity.of(source.run))
    if int(model.output_shape[-1]) != len(class_names):
        raise ConversionError(f"{len(class_names)} class names for a model with {model.output_shape[-1]} outputs")
    presets = [PRESETS[p]() for p in options.precisions]
    needs_images = next((p for p in presets if p.precision.needs_calibration_images), None)
    images = None
    if needs_images is not None:  # built once, before any file is written
        arguments = options.arguments(needs_images.name)
        images = build_calibration_images(source, arguments["calibration_images"], image_size,
                                             arguments["calibration_data"])

    metadata = replace(build_metadata(source, image_size, class_names), temperature=temperature,
                       threshold=graph_threshold(source.run, temperature))
    out_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out_dir)
    results, files = [], {}
    with SavedModels() as saved_model:
        float32 = float32_once(lambda: saved_model(model))
        for preset in presets:  # every precision converted before any file is written
            start = time.perf_counter()
            job = ExportJob(model, images, options.arguments(preset.name), saved_model, float32)
            flatbuffer, quantization = preset.run(job)
            files[targets[preset.name]] = embed_metadata(
                flatbuffer, replace(metadata, precision=preset.name, quantization=quantization))
            results.append(ConvertedModel(preset.name, str(targets[preset.name]), len(files[targets[preset.name]]),
                                          round(time.perf_counter() - start, 2)))
    write_models(files, overwrite=options.force)
    size_ratios(results, out_dir, metadata.model_sha256)
    return results
