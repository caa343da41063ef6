"""Keras model -> self-describing .tflite files (float32, float16, full INT8).

What is converted is the serving graph (no augmentation); its input is raw RGB 0..255 at
the trained size because normalisation lives inside the model. INT8 is calibrated on
images from the run's training split, decoded and resized by the training function.
Every file is written to a temporary name and renamed, so a failure leaves nothing.
"""

from __future__ import annotations

import contextlib
import io
import os
import time
import warnings
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence

import numpy as np

from edge.errors import ArteryEdgeError
from edge.version import __version__
from converters.float16_exceptions import SMALL_WEIGHT_ELEMENTS, restore_small_weights
from converters.metadata_writer import embed_metadata
from converters.presets import PRESETS, QuantizationPreset
from edge.precisions import DEVICE_DEFAULT, FLOAT_REFERENCE, PRECISIONS
from edge.imaging import COLOR_ORDER, INPUT_RANGE, RESIZE_METHOD, load_image
from edge.metadata import ModelMetadata, sha256_of_file
from edge.decision import positive_index
from trainer.data import DataError, Sample, print_progress, scan_dataset, subset
from trainer.runs import TrainedRun, load_run
from trainer.training import MODEL_FILE

TRAINING_SUMMARY_KEYS = (
    "alpha", "image_size", "weights", "epochs", "fine_tune_epochs", "learning_rate",
    "fine_tune_learning_rate", "fine_tune_at", "dropout", "l2", "batch_size", "seed",
)


WEIGHT_ROUNDINGS = ("calibrated", "nearest")


class ConversionError(ArteryEdgeError, ValueError):
    """The model or its representative data cannot be converted; one line for the user."""


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
        run = load_run(path.parent) if path.name == MODEL_FILE and (path.parent / "run.json").is_file() else None
        return cls(path, run)


def load_keras_model(path: Path, temperature: float = 1.0):
    """Load a Keras model and check it takes one square RGB image; return its serving graph
    (for one of our training models: calibrated with ``temperature``)."""
    import keras

    from trainer.model import AUGMENTATION, float32_twin, is_float32, serving_model

    if path.suffix not in (".keras", ".h5"):
        raise ConversionError(f"{path} is not a Keras model file (.keras or .h5)")
    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as exc:  # Keras raises many types for a bad file
        raise ConversionError(f"{path} is not a Keras model (loading failed: {type(exc).__name__})") from None
    shape = tuple(model.input_shape) if not isinstance(model.input_shape, list) else ()
    if len(shape) != 4 or shape[3] != 3 or shape[1] is None or shape[1] != shape[2]:
        raise ConversionError(f"{path}: input must be one square RGB image tensor (None, S, S, 3), found {model.input_shape}")
    has_augmentation = any(layer.name == AUGMENTATION for layer in model.layers)
    if has_augmentation:
        return serving_model(model, temperature)
    return model if is_float32(model) else float32_twin(model)


def representative_samples(samples: Sequence[Sample], count: int, seed: int = 0) -> list[Sample]:
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


def build_representative_images(
    source: ConversionSource, count: int, image_size: int, data_dir: Optional[Path] = None
) -> np.ndarray:
    """Decode the calibration images (training split, or ``data_dir``), exactly as in training."""
    if data_dir is not None:
        try:
            samples = scan_dataset(Path(data_dir)).samples
        except DataError as exc:
            raise ConversionError(f"representative data: {exc}") from None
    elif source.run is not None:
        samples = subset(source.run.split(), "train")
    else:
        raise ConversionError("INT8 needs representative images: pass --representative-data DIR (class folders)")
    if not samples:
        raise ConversionError("representative set is empty")
    chosen = representative_samples(samples, count)
    images = []
    progress = print_progress("calibration images")
    for done, sample in enumerate(chosen, 1):
        try:
            images.append(load_image(sample.path, image_size))
        except Exception as exc:
            raise ConversionError(
                f"representative set cannot be built: {exc} (moved data? use --representative-data DIR)"
            ) from None
        progress(done, len(chosen))
    return np.stack(images)


def representative_dataset(images: np.ndarray) -> Callable[[], Iterator[list]]:
    """Calibration batches. One pixel of the first image is set to 0 and one to 255 so the
    input's calibrated range is exactly 0..255: uint8 input scale 1, zero point 0, every
    raw pixel exact (otherwise the brightest calibration pixel, e.g. 244, would clip)."""
    first = images[0].copy()
    first[0, 0], first[0, 1] = 0, 255

    def generate() -> Iterator[list]:
        for index, image in enumerate(images):
            yield [(first if index == 0 else image)[np.newaxis].astype(np.float32)]

    return generate


def graph_threshold(run, temperature: float) -> Optional[float]:
    """The run's threshold (chosen on calibrated probabilities) for a graph with ``temperature``.
    Two classes: p = sigmoid(dz / T), so p_cal >= t  <=>  p_T >= sigmoid(T_run * logit(t) / T)."""
    if run is None or run.threshold is None:
        return None
    t = min(max(run.threshold, 1e-12), 1 - 1e-12)
    return float(1 / (1 + np.exp(-run.temperature * np.log(t / (1 - t)) / temperature)))


def build_metadata(source: ConversionSource, image_size: int, labels: Sequence[str], precision: str = "") -> ModelMetadata:
    """Everything but the precision is shared by the variants of one conversion (one hash of the source)."""
    training = {}
    if source.run is not None:
        training = {key: source.run.config.get(key) for key in TRAINING_SUMMARY_KEYS}
        training["test_accuracy"] = source.run.metrics.get("accuracy")
        folders = source.run.config.get("data_dirs") or [source.run.config.get("data_dir", "")]
        training["data_dir"] = " + ".join(Path(folder).name for folder in folders)
    return ModelMetadata(
        labels=list(labels),
        input_size=image_size,
        precision=precision,
        color_order=COLOR_ORDER,
        input_range=INPUT_RANGE,
        resize_method=RESIZE_METHOD,
        positive_label=labels[positive_index(list(labels))],
        source_model_sha256=sha256_of_file(source.model_path),
        training=training,
        artery_edge_version=__version__,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        parent=dict(source.run.parent or {}) if source.run is not None else {},  # the site it was adapted from
    )


def write_atomically(path: Path, data: bytes, replace_existing: bool = False) -> None:
    """Write to a temporary file beside ``path``, then move it into place in one step.

    Without ``replace_existing`` the move is ``os.link``, which fails if ``path`` exists, even
    one created by another process while this one converted (no check-then-write race). The
    temporary name carries this process id, so one left by a killed conversion is removed by
    the next (see :func:`remove_stale_temporaries`). The file gets the umask's usual mode.
    """
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temp, "wb") as out:
            out.write(data)
        if replace_existing:
            os.replace(temp, path)
        else:
            try:
                os.link(temp, path)
            except FileExistsError:
                raise ConversionError(f"refusing to overwrite {path}, created meanwhile (use --force)") from None
    finally:
        temp.unlink(missing_ok=True)


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Remove ``.<name>.<pid>.tmp`` files whose process is gone (a conversion killed with -9)."""
    removed = []
    for temp in (t for p in PRECISIONS.values() for t in Path(folder).glob(f".{p.file_name}.*.tmp")):
        pid = temp.suffixes[-2].lstrip(".") if len(temp.suffixes) >= 2 else ""
        if pid.isdigit() and not process_alive(int(pid)):
            temp.unlink(missing_ok=True)
            removed.append(temp)
    return removed


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _run_converter(model, preset: QuantizationPreset, representative=None) -> bytes:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    preset.configure(converter, representative)
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs")  # we calibrate
        return converter.convert()  # TF prints the traced signature on stdout


def int8_ready_model(model, images: np.ndarray, rounding: str):
    """The model whose float weights the INT8 converter quantizes, and what was done to it.
    ``calibrated``: BatchNorm folded, then every kernel set to the int8 values that best
    reproduce its float outputs on the calibration images (see ``weight_rounding``)."""
    if rounding == "nearest":
        return model, {"weight_rounding": "nearest"}
    from converters.bn_folding import fold_batchnorm
    from converters.weight_rounding import round_model

    folded = fold_batchnorm(model)
    layers = round_model(folded, images, progress=print_progress("int8 weight rounding, layers"))
    reductions = [layer.reduction for layer in layers]
    return folded, {
        "weight_rounding": "calibrated",
        "layers": len(layers),
        "median_output_error_reduction": round(float(np.median(reductions)), 2),
    }


def convert(
    source_path: Path,
    precisions: Sequence[str] = (DEVICE_DEFAULT.name,),
    out_dir: Optional[Path] = None,
    representative_count: int = 200,
    representative_data: Optional[Path] = None,
    labels: Optional[Sequence[str]] = None,
    force: bool = False,
    weight_rounding: str = "calibrated",
    float16_keep_below: int = SMALL_WEIGHT_ELEMENTS,
    calibrated: bool = True,
) -> list[ConvertedModel]:
    """Convert a run (or a .keras file) to the asked precisions; return what was written.
    ``float16_keep_below``: ops whose weights have fewer elements stay float32 (0: none).
    ``calibrated``: bake the run's temperature into the graph (False: plain softmax, T = 1)."""
    unknown = [p for p in precisions if p not in PRESETS]
    if unknown:
        raise ConversionError(f"unknown precision {', '.join(unknown)}; choose from {', '.join(PRESETS)} or all")
    if weight_rounding not in WEIGHT_ROUNDINGS:
        raise ConversionError(f"unknown weight rounding {weight_rounding!r}; choose from {', '.join(WEIGHT_ROUNDINGS)}")
    if representative_count < 1:
        raise ConversionError("--representative-count must be at least 1")
    if float16_keep_below < 0:
        raise ConversionError("--float16-keep-below must be 0 or more")
    source = ConversionSource.resolve(source_path)
    out_dir = Path(out_dir) if out_dir else source.model_path.parent
    targets = {p: PRECISIONS[p].file(out_dir) for p in precisions}
    existing = [str(t) for t in targets.values() if t.exists()]
    if existing and not force:
        raise ConversionError(f"refusing to overwrite {', '.join(existing)} (use --force)")
    class_names = list(labels) if labels else (source.run.class_names if source.run else None)
    if not class_names:
        raise ConversionError("class names unknown: convert a run directory or pass --labels A,B")

    temperature = source.run.temperature if calibrated and source.run is not None else 1.0
    model = load_keras_model(source.model_path, temperature)
    image_size = int(model.input_shape[1])
    if int(model.output_shape[-1]) != len(class_names):
        raise ConversionError(f"{len(class_names)} class names for a model with {model.output_shape[-1]} outputs")
    presets = [PRESETS[p]() for p in PRESETS if p in precisions]  # float32 first: float16 reuses it
    images = None
    if any(p.needs_representative_data for p in presets):
        images = build_representative_images(source, representative_count, image_size, representative_data)

    metadata = replace(build_metadata(source, image_size, class_names), temperature=temperature,
                       threshold=graph_threshold(source.run, temperature))
    out_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out_dir)
    float32_bytes: Optional[bytes] = None
    results = []
    for preset in presets:
        start = time.perf_counter()
        quantization: dict = {}
        if preset.needs_representative_data:  # full integer: BN folding and weight rounding first
            int8_model, quantization = int8_ready_model(model, images, weight_rounding)
            flatbuffer = _run_converter(int8_model, preset, representative_dataset(images))
        else:
            flatbuffer = _run_converter(model, preset)
        if preset.precision == FLOAT_REFERENCE:
            float32_bytes = flatbuffer
        if "float16_keep_below" in preset.precision.options and float16_keep_below:
            float32_bytes = float32_bytes or _run_converter(model, PRESETS[FLOAT_REFERENCE.name]())
            flatbuffer, kept = restore_small_weights(flatbuffer, float32_bytes, float16_keep_below)
            quantization = {"float32_weights_below_elements": float16_keep_below, "float32_tensors": kept}
        flatbuffer = embed_metadata(flatbuffer, replace(metadata, precision=preset.name, quantization=quantization))
        write_atomically(targets[preset.name], flatbuffer, replace_existing=force)
        results.append(ConvertedModel(preset.name, str(targets[preset.name]), len(flatbuffer),
                                      round(time.perf_counter() - start, 2)))
    reference = FLOAT_REFERENCE.file(out_dir)
    if reference.is_file():
        for result in results:
            result.ratio_to_float32 = round(result.bytes / reference.stat().st_size, 4)
    return results
