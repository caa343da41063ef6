"""The ``artery-edge`` command: a thin typer layer over trainer, converters, evaluation and edge.

Declarations and calls only (tests/test_code_shape.py): each command's options object checks its
values before any work, the packages do the work, ``edge.printers`` prints the results.

Commands that need TensorFlow import it lazily, so ``infer`` and ``benchmark`` work where
only ``artery-edge[edge]`` is installed; a missing TensorFlow is a one-line hint.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
from inspect import Parameter, signature
from pathlib import Path
from typing import Callable, List, Optional

import typer

from artery_edge.converters.options import ConversionError, ConvertOptions, option_default
from artery_edge.edge.atomic import check_can_create
from artery_edge.edge.command_options import REPORT_IMAGES, parse_labels
from artery_edge.edge.errors import OptionError
from artery_edge.edge.precisions import DEVICE_DEFAULT, FLOAT_REFERENCE, PRECISIONS
from artery_edge.edge.printers import (print_benchmarks, print_conversions, print_errors, print_evaluation,
                                       print_explanations, print_frame_evaluation, print_layer_report, print_summary,
                                       print_training, say, show)
from artery_edge.trainer.adaptation import ADAPTATION_RECIPE
from artery_edge.trainer.config import DEFAULTS, train_flags, train_settings

app = typer.Typer(
    help="Train a MobileNetV2 angiography patch classifier, convert it to TFLite and run it on edge devices.\n\n"
    "Research tool, not a diagnostic device.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

D = DEFAULTS  # every training option's default comes from trainer.config
TRAIN_HINT = 'TensorFlow is not installed: pip install "artery-edge[train]"'


def show_version(value: bool) -> None:
    if value:
        from artery_edge.edge.version import __version__

        typer.echo(f"artery-edge {__version__}")
        raise typer.Exit()


@app.callback()
def options(
    verbose: bool = typer.Option(False, "--verbose", help="Show TensorFlow's and LiteRT's own log lines."),
    version: bool = typer.Option(False, "--version", callback=show_version, is_eager=True, help="Print the version."),
) -> None:
    if verbose:
        from artery_edge.edge.native_log import VERBOSE_ENV

        os.environ[VERBOSE_ENV] = "1"


def fail(message: str, code: int = 1) -> None:
    """``error: message`` on one line (a file name's newline shown as ``\\n``), then exit ``code``."""
    from artery_edge.edge.text import terminal

    typer.echo(f"error: {terminal(message)}", err=True)
    raise typer.Exit(code)


def describe_os_error(exc: OSError) -> str:
    """'permission denied: /path' style, one line, for any OS error (disk full, read-only...)."""
    from artery_edge.edge.imaging import display_path

    what = (exc.strerror or type(exc).__name__).lower()
    return f"{what}: {display_path(exc.filename)}" if exc.filename else what


def user_errors(command: Callable) -> Callable:
    """Turn the project's own one-line errors (ArteryEdgeError) and OS errors into
    'error: ...' and a non-zero exit (2 for an option out of range: OptionError); anything
    else is a bug and keeps its traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        from artery_edge.edge.errors import ArteryEdgeError, OptionError

        handled: tuple = (ArteryEdgeError, OSError)
        try:
            return command(*args, **kwargs)
        except handled as exc:
            if os.environ.get("ARTERY_EDGE_DEBUG"):
                raise
            fail(describe_os_error(exc) if isinstance(exc, OSError) and exc.strerror else str(exc),
                 2 if isinstance(exc, OptionError) else 1)
        except KeyboardInterrupt:
            fail("interrupted", 130)

    return wrapper


def require_tensorflow() -> None:
    """Import TensorFlow now, its native start-up log lines hidden unless --verbose."""
    if importlib.util.find_spec("tensorflow") is None:
        fail(TRAIN_HINT)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from artery_edge.edge.native_log import quiet_native_stderr

    with quiet_native_stderr():
        import tensorflow as tf

        tf.config.list_physical_devices()  # the CUDA probe logs here


@contextlib.contextmanager
def stdout_for_json(json_output: bool):
    """With --json, stdout carries the JSON document alone: progress that libraries print
    there (Keras progress bars, converter messages) goes to stderr meanwhile."""
    if not json_output:
        yield
        return
    import sys

    with contextlib.redirect_stdout(sys.stderr):
        yield


@contextlib.contextmanager
def as_option_error(*errors: type[Exception]):
    """A library's own error for a bad option value (ConvertOptions' ConversionError) becomes an
    OptionError: the same exit 2 as every other command's option errors."""
    try:
        yield
    except errors as exc:
        raise OptionError(str(exc)) from None


@app.command()
@user_errors
def synth(
    out: Path = typer.Option(..., "--out", help="New (or empty) folder for the class folders."),
    count: int = typer.Option(500, "--count", help="Images per class (--frames: training frames)."),
    size: int = typer.Option(64, "--size", help="Patch side in pixels."),
    seed: int = typer.Option(0, "--seed"),
    frames: bool = typer.Option(False, "--frames", help="Whole frames (a vessel tree, narrowings outlined in COCO; "
                                                       "train/ and val/) for `train --task map`, not patches."),
) -> None:
    """Write a synthetic angiography-like patch dataset (Healthy / Unhealthy = local narrowing), or
    whole frames with their narrowings' outlines (--frames)."""
    from artery_edge.edge.progress import progress_bar
    from artery_edge.edge.text import terminal
    from artery_edge.trainer.synthetic import synthesize_dataset
    from artery_edge.trainer.synthetic_frames import synthesize_frames

    make = synthesize_frames if frames else synthesize_dataset
    with progress_bar("synthesizing") as progress:
        counts = make(out, count, size, seed, progress=progress)
    show(terminal(f"wrote {sum(counts.values())} images to {out} ({', '.join(f'{k}: {v}' for k, v in counts.items())})"))


# `train`'s options: a flag per TrainConfig field, declared there once (trainer.config.flag_of)
TRAIN_OPTIONS: dict[str, tuple[object, typer.models.OptionInfo]] = {
    f.name: (f.kind, typer.Option(f.default, *f.declarations, help=f.help)) for f in train_flags()}


def with_options(options: dict[str, tuple[object, typer.models.OptionInfo]], before: str) -> Callable:
    """Give a command the parameters of ``options`` (name: (type, typer.Option)) in place of its
    ``**options``, listed before its parameter ``before``: a command whose flags mirror a
    dataclass's fields stays a short function, and its --help is that of a written-out signature."""

    def decorate(command: Callable) -> Callable:
        written = signature(command, eval_str=True)
        fixed = [p for p in written.parameters.values() if p.kind is not p.VAR_KEYWORD]
        at = [p.name for p in fixed].index(before)
        added = [Parameter(name, Parameter.POSITIONAL_OR_KEYWORD, default=option, annotation=kind)
                 for name, (kind, option) in options.items()]
        command.__signature__ = written.replace(parameters=fixed[:at] + added + fixed[at:])
        return command

    return decorate


def given_options(ctx: typer.Context, values: dict[str, object]) -> dict[str, object]:
    """The options typed on the command line (not left at their defaults), by name."""
    sources = {name: ctx.get_parameter_source(name) for name in values}
    return {name: value for name, value in values.items()
            if sources[name] is not None and sources[name].name not in ("DEFAULT", "DEFAULT_MAP")}


@app.command()
@user_errors
@with_options(TRAIN_OPTIONS, before="resume")
def train(
    ctx: typer.Context,
    data_dirs: Optional[List[Path]] = typer.Argument(
        None, help="Class-folder dataset(s): DATA/<class>/<image>; several folders merge class by class."),
    config: Optional[Path] = typer.Option(None, "--config", help="TOML file with any of these options (CLI wins)."),
    resume: Optional[Path] = typer.Option(
        None, "--resume", help="Continue this interrupted run directory (kill -9 included) with its own config."
    ),
    json_output: bool = typer.Option(False, "--json", help="Print the test metrics as JSON."),
    **options: object,
) -> None:
    """Two-stage MobileNetV2 transfer learning: frozen ImageNet base, then fine-tuning."""
    settings = train_settings(given_options(ctx, {"data_dirs": data_dirs, **options}), config, resume)
    require_tensorflow()
    from artery_edge.trainer.training import train as run_training

    with stdout_for_json(json_output):
        result = run_training(None if resume else settings, resume_dir=resume)
    print_training(result.run_dir, result.metrics, result.seconds, json_output)


@app.command()
@user_errors
def adapt(
    data_dirs: List[Path] = typer.Argument(..., help="The new site's class folders (DATA/<class>/<image>)."),
    parent: Path = typer.Option(..., "--from", help="The finished run to adapt (e.g. models/reference)."),
    image_size: int = typer.Option(0, "--image-size", help="Input size in pixels (0: the parent's)."),
    replay: int = typer.Option(
        D.replay, "--replay", help="Images per class of the parent's training split mixed in (keeps the original site)."),
    cut_at: str = typer.Option(
        ADAPTATION_RECIPE["cut_at"], "--cut-at",
        help="The parent's base ends at this layer (its earlier, less site-specific features); '' keeps it whole."),
    init_blend: float = typer.Option(
        ADAPTATION_RECIPE["init_blend"], "--init-blend",
        help="The parent's share of the starting base weights, the rest those it was fine-tuned from "
             "(ImageNet for the reference; 1: the parent as is)."),
    split_pattern: str = typer.Option(
        ADAPTATION_RECIPE["split_pattern"], "--split-pattern",
        help="REGEX=SUBSET[,...]: which files choose epochs, temperature and threshold (validation)."),
    output_dir: Path = typer.Option(Path(D.output_dir), "--output-dir", help="Runs land in a new folder here."),
    run_name: str = typer.Option("", "--run-name", help="Run folder name (default: run-<timestamp>)."),
    seed: int = typer.Option(D.seed, "--seed"),
    json_output: bool = typer.Option(False, "--json", help="Print the figures as JSON."),
) -> None:
    """Adapt a trained run to a new site from ~100 labelled patches: `train --init-from` with a
    small-data recipe (trainer/adaptation.py); temperature and threshold re-fitted on the site."""
    require_tensorflow()
    from artery_edge.trainer.adaptation import AdaptOptions
    from artery_edge.trainer.training import train as run_training

    options = AdaptOptions(data_dirs, parent, image_size, replay, cut_at, init_blend, split_pattern, output_dir,
                           run_name, seed)
    with stdout_for_json(json_output):
        result = run_training(options.config())
    print_training(result.run_dir, result.metrics, result.seconds, json_output)


@app.command()
@user_errors
def convert(
    source: Path = typer.Argument(..., help="A run directory or a model.keras file."),
    quantize: str = typer.Option(
        DEVICE_DEFAULT.name, "--quantize", help=f"{', '.join(PRECISIONS)}, a comma list, or all (model_<precision>.tflite)."),
    calibration_images: Optional[int] = typer.Option(
        None, "--calibration-images",
        help=f"INT8: how many calibration images set the activation ranges (default {option_default('calibration_images')})."),
    calibration_data: Optional[Path] = typer.Option(
        None, "--calibration-data",
        help="Class-folder dataset for the calibration images instead of the run's training split."),
    labels: Optional[str] = typer.Option(None, "--labels", help="Class names, comma-separated (models outside a run)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Output folder (default: next to the model)."),
    force: bool = typer.Option(False, "--force", help="Overwrite existing .tflite files."),
    weight_rounding: Optional[str] = typer.Option(
        None, "--weight-rounding",
        help="INT8 kernels: 'calibrated' picks the int8 values that best reproduce each layer's float outputs "
             "on the calibration images; 'nearest' is the converter's plain rounding "
             f"(default {option_default('weight_rounding')}).",
    ),
    float16_keep_below: Optional[int] = typer.Option(
        None, "--float16-keep-below",
        help="float16: ops whose weights have fewer elements stay float32 (the few, sensitive stem layers); 0: none "
             f"(default {option_default('float16_keep_below')}).",
    ),
    temperature: bool = typer.Option(
        True, "--temperature/--no-temperature",
        help="Bake the run's fitted temperature into the graph (softmax(logits / T)); --no-temperature: T = 1.",
    ),
    json_output: bool = typer.Option(False, "--json"),
) -> None:
    """Convert a trained model to TFLite (float32 / float16 / dynamic range / full INT8) with self-describing metadata."""
    with as_option_error(ConversionError):  # options that do not apply to the asked precisions: before TensorFlow loads
        options = ConvertOptions(quantize, out, parse_labels(labels), force, apply_temperature=temperature,
                                 calibration_images=calibration_images, calibration_data=calibration_data,
                                 weight_rounding=weight_rounding, float16_keep_below=float16_keep_below)
    require_tensorflow()
    from artery_edge.converters.tflite import convert as run_conversion

    with stdout_for_json(json_output):
        results = run_conversion(source, options)
    print_conversions(results, json_output)


@app.command()
@user_errors
def evaluate(
    run: Path = typer.Option(..., "--run", help="A training run directory (its split manifest picks the test files)."),
    models: Optional[List[Path]] = typer.Option(None, "--models", help="TFLite files (default: the run's converted files, every precision); repeatable."),
    data: Optional[Path] = typer.Option(None, "--data", help="Evaluate on this class-folder dataset instead of the test split."),
    threshold: Optional[float] = typer.Option(
        None, "--threshold", help="Unhealthy iff its probability >= this (default: the run's stored operating point)."),
    target_sensitivity: Optional[float] = typer.Option(
        None, "--target-sensitivity", help="Pick each model's threshold on the validation split to reach this sensitivity."
    ),
    bootstrap: int = typer.Option(1000, "--bootstrap", help="Bootstrap resamples for the 95% intervals."),
    prevalence: Optional[float] = typer.Option(
        None, "--prevalence", help="Also report PPV and NPV re-weighted to this share of positives (0 < P < 1)."
    ),
    out: Optional[Path] = typer.Option(None, "--out", help="Output folder (default: RUN/evaluation, never overwritten)."),
    json_output: bool = typer.Option(False, "--json"),
) -> None:
    """Keras and every TFLite variant side by side: clinical metrics with 95% CIs and agreement with Keras."""
    from artery_edge.evaluation.options import EvaluateOptions

    options = EvaluateOptions(models, data, threshold, target_sensitivity, bootstrap, prevalence)  # checked here
    check_can_create(out)  # before the work, not after it
    require_tensorflow()
    from artery_edge.evaluation.evaluate import evaluate as run_evaluation
    from artery_edge.evaluation.frames import is_frame_run, run_frame_evaluation
    from artery_edge.evaluation.report import metrics_table, write_evaluation

    if is_frame_run(run):  # a whole-frame run: lesions and ARCADE's F1, not labels
        folder, lines, report = run_frame_evaluation(run, options, out, quiet=json_output)
        print_frame_evaluation(folder, lines, report, json_output)
        return
    with stdout_for_json(json_output):
        result = run_evaluation(run, options, quiet=json_output)
        folder = write_evaluation(result, out)
    print_evaluation(folder, result.report, json_output, metrics_table)


@app.command()
@user_errors
def explain(
    run: Path = typer.Option(..., "--run", help="A training run directory (its Keras model is explained)."),
    image: List[Path] = typer.Option(..., "--image", help="Image file or folder (recursive); repeatable."),
    out: Optional[Path] = typer.Option(None, "--out", help="Output folder (default: RUN/explain, never overwritten)."),
    layer: Optional[str] = typer.Option(
        None, "--layer", help="Convolutional layer of the base to explain (default: the last block with >= 4x4 cells)."
    ),
    json_output: bool = typer.Option(False, "--json"),
) -> None:
    """Grad-CAM heat maps: an overlay PNG per image and one grid with each prediction."""
    check_can_create(out)  # before the work, not after it
    require_tensorflow()
    from artery_edge.edge.decision import positive_index
    from artery_edge.trainer.explain import GRID_FILE, explain_inputs, write_explanations
    from artery_edge.trainer.runs import load_run

    trained = load_run(run)
    with stdout_for_json(json_output):
        explanations, failed = explain_inputs(trained, image, layer)
    print_errors(failed)
    folder, overlays = write_explanations(explanations, Path(out) if out else trained.run_dir / "explain",
                                          trained.class_names[positive_index(trained.class_names)])
    print_explanations(folder, folder / GRID_FILE, explanations, overlays, len(failed), json_output)
    raise typer.Exit(1 if failed else 0)


@app.command()
@user_errors
def infer(
    model: Optional[Path] = typer.Option(
        None, "--model", help="A .tflite file (metadata gives labels and preprocessing); default: the packaged "
                              "reference model (models/reference/MODEL_CARD.md)."),
    image: Optional[List[Path]] = typer.Option(
        None, "--image", help="Image file (.dcm too: one result per frame) or folder (recursive); repeatable."),
    camera: Optional[str] = typer.Option(
        None, "--camera", help="Camera index (OpenCV; picamera2 when it is the only camera) or pi (the Raspberry "
                               "Pi camera module through picamera2) for live classification."),
    video: Optional[Path] = typer.Option(
        None, "--video", help="Video file, or a DICOM cine (.dcm) at its own frame rate; same loop as --camera."),
    labels: Optional[str] = typer.Option(None, "--labels", help="Class names for models without metadata, comma-separated."),
    threshold: Optional[float] = typer.Option(
        None, "--threshold",
        help="Positive (Unhealthy) iff its probability >= this; default: the model's stored operating point, "
             "else arg-max."),
    threads: Optional[int] = typer.Option(None, "--threads", help="Interpreter threads."),
    json_output: bool = typer.Option(False, "--json", help="JSON (files) or JSON lines (camera/video) on stdout."),
    csv_file: Optional[Path] = typer.Option(None, "--csv", help="Also write file results to this new CSV file."),
    crop: str = typer.Option("center", "--crop", help="Camera/video: center (square crop) or full frame."),
    display: bool = typer.Option(True, "--display/--no-display", help="Camera/video: show a window with the overlay."),
    every: Optional[int] = typer.Option(None, "--every", help="Camera/video without display: print every Nth frame "
                                                               "(default 1)."),
    frames: Optional[str] = typer.Option(
        None, "--frames", help="Camera/video: stop after N frames. --image: the frames of each DICOM cine to "
                               "classify, from 1 (e.g. 1,4-6; default all)."),
    show_header: bool = typer.Option(
        False, "--show-header", help="Print each DICOM file's header on stderr, identifying values masked."),
    persist: Optional[str] = typer.Option(
        None, "--persist", help="Camera/video with a whole-frame model: keep a lesion only when seen in N of the "
                                "last M frames, e.g. 2/3."),
) -> None:
    """Classify image files (DICOM too), a camera or a video with a .tflite model (no TensorFlow needed);
    with a whole-frame model, mark the lesions of a camera or video live (files: `scan`)."""
    from artery_edge.edge.command_options import InferOptions
    from artery_edge.edge.infer_report import run_infer

    options = InferOptions.checked(model, image, camera, video, labels, threshold, threads, json_output, csv_file, crop,
                                   display, every, frames, show_header, persist)
    raise typer.Exit(run_infer(options))


@app.command()
@user_errors
def scan(
    paths: List[Path] = typer.Argument(..., help="Whole frames: image files, folders (recursive), DICOM files (every "
                                                 "frame) or videos."),
    model: Optional[Path] = typer.Option(
        None, "--model", help="A whole-frame .tflite (from `train --task map`); default: the packaged whole-frame "
                              "model (models/frames/MODEL_CARD.md)."),
    threshold: Optional[float] = typer.Option(
        None, "--threshold", help="Map threshold; default: the model's stored one (chosen on validation)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write an overlay PNG per frame (frame + map + boxes) here; "
                                                           "existing files are never replaced."),
    persist: Optional[str] = typer.Option(
        None, "--persist", help="Videos and cines: keep a lesion only when seen in N of the last M frames, e.g. 2/3."),
    frames: Optional[str] = typer.Option(None, "--frames", help="DICOM cines: the frames to scan, from 1 (e.g. 1,4-6)."),
    max_frames: Optional[int] = typer.Option(None, "--max-frames", help="Videos: stop after N frames each."),
    threads: Optional[int] = typer.Option(None, "--threads", help="Interpreter threads."),
    json_output: bool = typer.Option(False, "--json", help="One JSON document on stdout."),
) -> None:
    """Find and mark stenoses on whole angiogram frames: lesions per frame (box in the frame's pixels,
    score), optional overlays. Research tool, not a diagnostic device."""
    from artery_edge.edge.scan_options import ScanOptions
    from artery_edge.edge.scan_report import run_scan

    options = ScanOptions.checked(paths, model, threshold, out, persist, frames, max_frames, threads, json_output)
    raise typer.Exit(run_scan(options))


@app.command()
@user_errors
def serve(
    model: Optional[Path] = typer.Option(
        None, "--model", help="A .tflite file; default: the packaged reference model."),
    camera: Optional[str] = typer.Option(None, "--camera", help="Camera index or pi: the page's live view."),
    video: Optional[Path] = typer.Option(
        None, "--video", help="Video file or DICOM cine (.dcm) as the live view (re-opened when it ends)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on; any but loopback needs --token-file."),
    port: int = typer.Option(8000, "--port", help="Port (0: any free one; the address is printed)."),
    token_file: Optional[Path] = typer.Option(
        None, "--token-file", help="File holding the access token every /v1 request must carry."),
    threads: Optional[int] = typer.Option(None, "--threads", help="Interpreter threads."),
    crop: str = typer.Option("center", "--crop", help="Camera/video: center (square crop) or full frame."),
    max_upload_mb: float = typer.Option(10.0, "--max-upload-mb", help="Larger uploads are refused (413)."),
) -> None:
    """A page (live view, chart, upload) and an HTTP API on this device (docs/serve.md); needs the serve extra."""
    from artery_edge.edge.serve import ServeOptions
    from artery_edge.edge.serve import serve as run_server

    options = ServeOptions.checked(model, camera, video, host, port, token_file, threads, crop, max_upload_mb)
    run_server(options, say)


@app.command()
@user_errors
def benchmark(
    model: Optional[List[Path]] = typer.Option(
        None, "--model", help="A .tflite file; repeat to compare side by side (default: the packaged reference)."),
    runs: int = typer.Option(100, "--runs", help="Timed invocations per model."),
    warmup: int = typer.Option(10, "--warmup", help="Untimed invocations first."),
    threads: Optional[int] = typer.Option(None, "--threads"),
    labels: Optional[str] = typer.Option(None, "--labels", help="Class names for models without metadata."),
    frame: Optional[Path] = typer.Option(
        None, "--frame", help="Whole-frame models: time the full scan (decode, resize, map, lesions) on this frame "
                              "(default: a 512 x 512 random frame)."),
    json_output: bool = typer.Option(False, "--json"),
) -> None:
    """Latency (p50/p95/mean) of the model alone, of the whole path (pre- and post-processing
    included: 'path ms'), throughput, load time and peak RSS per model, each in a fresh process."""
    from artery_edge.edge.bench import benchmark_models
    from artery_edge.edge.command_options import BenchmarkOptions

    options = BenchmarkOptions.checked(model, runs, warmup, threads, labels, frame)
    results = benchmark_models(options.models, options.runs, options.warmup, options.threads, options.labels,
                               options.frame)
    print_benchmarks(results, json_output)


@app.command()
@user_errors
def inspect(
    model: Optional[Path] = typer.Argument(None, help="A .tflite file (default: the packaged reference model)."),
    report: bool = typer.Option(
        False, "--report", help="Per-layer error of this quantized model against its float32 twin (Markdown + PNG)."),
    reference: Optional[Path] = typer.Option(
        None, "--reference", help=f"The float32 twin (default: {FLOAT_REFERENCE.file_name} next to MODEL)."),
    data: Optional[Path] = typer.Option(
        None, "--data", help="Images for --report (class folders or a flat folder; default: the run's training split)."),
    count: Optional[int] = typer.Option(None, "--count", help=f"--report: images compared (default {REPORT_IMAGES})."),
    out: Optional[Path] = typer.Option(None, "--out", help="--report folder (default: next to MODEL, never overwritten)."),
    json_output: bool = typer.Option(False, "--json"),
) -> None:
    """What a .tflite file is (metadata, tensors, op counts; no TensorFlow needed), or with
    --report where its quantization loses precision, layer by layer."""
    from artery_edge.edge.command_options import InspectOptions

    options = InspectOptions.checked(model, report, reference, data, count, out)
    if not options.report:
        from artery_edge.edge.inspect import summarize

        print_summary(summarize(options.model), json_output)
        return
    from artery_edge.evaluation.layer_report import check_pair, compare, report_images, write_report

    check_pair(options.model, options.twin)
    check_can_create(out)  # before the comparison, not after it
    images = report_images(options.model, data, options.count)
    rows = compare(options.model, options.twin, images)
    files = write_report(rows, options.folder, options.model, options.twin, len(images))
    print_layer_report(options.model, options.twin, len(images), files, rows, json_output)


def main() -> None:
    """Usage errors as one `error:` line (exit 2), like every other error of the tool."""
    import sys

    try:  # typer >= 0.26 vendors click
        from typer._click.exceptions import UsageError
    except ImportError:  # pragma: no cover - older typer on click
        from click.exceptions import UsageError

    try:
        code = app(standalone_mode=False)  # returns the exit code instead of calling sys.exit
    except UsageError as exc:
        typer.echo(f"error: {exc.format_message()} (see {exc.ctx.command_path if exc.ctx else 'artery-edge'} --help)",
                   err=True)
        sys.exit(2)
    except typer.Abort:
        typer.echo("error: interrupted", err=True)
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
