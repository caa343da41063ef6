"""The ``artery-edge`` command: a thin typer layer over trainer, converters, evaluation and edge.

Commands that need TensorFlow import it lazily, so ``infer`` and ``benchmark`` work where
only ``artery-edge[edge]`` is installed; a missing TensorFlow is a one-line hint.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import json
import os
from inspect import Parameter, signature
from pathlib import Path
from typing import Callable, List, Optional, Union

import typer

from artery_edge.converters.options import ConversionError, ConvertOptions, option_default
from artery_edge.edge.atomic import check_can_create
from artery_edge.edge.runtime import check_threads
from artery_edge.edge.precisions import DEVICE_DEFAULT, FLOAT_REFERENCE, PRECISIONS
from artery_edge.trainer.adaptation import ADAPTATION_RECIPE
from artery_edge.trainer.config import DEFAULTS, flag, merge_config, refuse_options_on_resume

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


def print_json(data) -> None:
    typer.echo(json.dumps(data, indent=2, default=str, allow_nan=False))


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
    typer.echo(terminal(f"wrote {sum(counts.values())} images to {out} "
                        f"({', '.join(f'{k}: {v}' for k, v in counts.items())})"))


# `train`'s options: a flag per TrainConfig field (keyed by the field's name), its default read there.
TRAIN_OPTIONS: dict[str, tuple[object, typer.models.OptionInfo]] = {
    "output_dir": (Path, typer.Option(Path(D.output_dir), "--output-dir", help="Runs land in a new folder here.")),
    "run_name": (str, typer.Option(D.run_name, "--run-name", help="Run folder name (default: run-<timestamp>).")),
    "log_dir": (Path, typer.Option(Path(D.log_dir), "--log-dir", help="TensorBoard root.")),
    "image_size": (int, typer.Option(D.image_size, "--image-size", help="Square input size in pixels (>= 32).")),
    "batch_size": (int, typer.Option(D.batch_size, "--batch-size")),
    "seed": (int, typer.Option(D.seed, "--seed", help="Seeds the split, shuffling and initialisation.")),
    "val_fraction": (float, typer.Option(D.val_fraction, "--val-fraction")),
    "test_fraction": (float, typer.Option(D.test_fraction, "--test-fraction")),
    "alpha": (float, typer.Option(D.alpha, "--alpha", help="MobileNetV2 width multiplier.")),
    "weights": (str, typer.Option(D.weights, "--weights", help="imagenet, none, or a path to a .h5 file.")),
    "dropout": (float, typer.Option(D.dropout, "--dropout")),
    "l2": (float, typer.Option(D.l2, "--l2", help="L2 factor on the classifier kernel.")),
    "learning_rate": (float, typer.Option(
        D.learning_rate, "--learning-rate", help="Stage 1 (frozen base) Adam learning rate.")),
    "epochs": (int, typer.Option(D.epochs, "--epochs", help="Stage 1 epochs.")),
    "fine_tune_epochs": (int, typer.Option(
        D.fine_tune_epochs, "--fine-tune-epochs", help="Stage 2 epochs (0 skips fine-tuning).")),
    "fine_tune_learning_rate": (float, typer.Option(D.fine_tune_learning_rate, "--fine-tune-learning-rate")),
    "fine_tune_at": (int, typer.Option(
        D.fine_tune_at, "--fine-tune-at", help="Unfreeze base layers from this index on.")),
    "cut_at": (str, typer.Option(
        D.cut_at, "--cut-at", help="End the base at this MobileNetV2 layer (e.g. block_13_expand_relu): "
                                   "earlier, less specialised features; '' keeps the whole base.")),
    "schedule": (str, typer.Option(
        D.schedule, "--schedule", help="constant, or cosine: linear warm-up then cosine decay to 0, in each stage.")),
    "warmup_epochs": (float, typer.Option(
        D.warmup_epochs, "--warmup-epochs", help="cosine: warm-up epochs per stage.")),
    "label_smoothing": (float, typer.Option(D.label_smoothing, "--label-smoothing", help="0 (off) to 0.5.")),
    "patience": (int, typer.Option(D.patience, "--patience", help="EarlyStopping patience on val_loss.")),
    "flip": (bool, typer.Option(D.flip, "--flip/--no-flip", help="Random horizontal and vertical flips.")),
    "rotation": (float, typer.Option(
        D.rotation, "--rotation", help="Random rotation, fraction of a full turn (0 = off).")),
    "zoom": (float, typer.Option(D.zoom, "--zoom", help="Random zoom factor (0 = off).")),
    "contrast": (float, typer.Option(D.contrast, "--contrast", help="Random contrast factor (0 = off).")),
    "brightness": (float, typer.Option(D.brightness, "--brightness", help="Random brightness factor (0 = off).")),
    "site_augmentation": (float, typer.Option(
        D.site_augmentation, "--site-augmentation",
        help="Probability per image of each of: down-sampling to 32 px and back, gamma, noise, blur (0 = off).")),
    "tensorboard": (bool, typer.Option(D.tensorboard, "--tensorboard/--no-tensorboard")),
    "class_weight": (str, typer.Option(
        D.class_weight, "--class-weight",
        help="none, or balanced: weight each class by its inverse frequency in training."
    )),
    "split_file": (Optional[Path], typer.Option(
        None, "--split-file", help="CSV with file (or path) and subset columns: train on this predefined split."
    )),
    "split_pattern": (str, typer.Option(
        D.split_pattern, "--split-pattern",
        help="REGEX=SUBSET[,...]: files whose name matches go to that subset (a published split, e.g. "
             "'validation-=test'); the rest fill the other subsets by --val-fraction / --test-fraction.",
    )),
    "group_pattern": (str, typer.Option(
        D.group_pattern, "--group-pattern",
        help="Regex; the first capture group of each file name is its group (patient, recording): "
             "no group crosses train/validation/test.",
    )),
    "operating_point": (str, typer.Option(
        D.operating_point, "--operating-point",
        help="Decision threshold chosen on validation and stored with the model: argmax (0.5), youden, accuracy, "
             "sensitivity=X or specificity=X.",
    )),
    "strategy": (str, typer.Option(
        D.strategy, "--strategy", help="auto (mirrored if >1 GPU), default (one device), mirrored (local GPUs or "
        "--devices), multi-worker (TF_CONFIG; the chief writes the run).",
    )),
    "devices": (str, typer.Option(
        D.devices, "--devices", help="mirrored: devices to replicate on, e.g. /gpu:0,/gpu:1.")),
    "cluster_timeout": (float, typer.Option(
        D.cluster_timeout, "--cluster-timeout",
        help="multi-worker: seconds to wait for the other workers to connect.")),
    "scale_learning_rate": (bool, typer.Option(
        D.scale_learning_rate, "--scale-learning-rate/--no-scale-learning-rate",
        help="Multiply the learning rates by the number of replicas (--batch-size is per replica).",
    )),
    "mixed_precision": (bool, typer.Option(
        D.mixed_precision, "--mixed-precision", help="mixed_float16 on GPU (refused on CPU).")),
    "steps_per_execution": (int, typer.Option(
        D.steps_per_execution, "--steps-per-execution", help="Training steps per call into the compiled function.")),
    "init_from": (Optional[Path], typer.Option(
        None, "--init-from", help="Start from this finished run's weights (same classes; its alpha; any input "
                                  "size); see also `adapt`.")),
    "replay": (int, typer.Option(
        D.replay, "--replay", help="With --init-from: images per class of the parent's training split mixed in.")),
    "init_blend": (float, typer.Option(
        D.init_blend, "--init-blend", help="With --init-from: the parent's share of the starting base weights, the "
                                           "rest from --weights (1: the parent as is; 0.5: halfway back, WiSE-FT).")),
    "teachers": (Optional[List[Path]], typer.Option(
        None, flag("teachers"), help="A finished run whose predictions teach this one (repeat for an ensemble: their "
                                "mean calibrated logit); same classes, any input size.")),
    "teacher_weight": (float, typer.Option(
        D.teacher_weight, "--teacher-weight", help="With --teacher: the ensemble's share of each training target "
                                                   "(the rest is the label).")),
    "task": (str, typer.Option(
        D.task, "--task", help="classify: class folders -> labels; map: whole frames with COCO or VOC lesions -> a "
                               "stenosis map that `scan` reads (docs/whole-frames.md).")),
    "target": (str, typer.Option(
        D.target, "--target", help="--task map: a lesion's target is its drawn outline (its box where none) or box.")),
}


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


def given_on_command_line(ctx: typer.Context, name: str) -> bool:
    source = ctx.get_parameter_source(name)
    return source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")


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
    typed = {"data_dirs": data_dirs, **options}
    given = {name: value for name, value in typed.items() if given_on_command_line(ctx, name)}
    if resume is not None:  # before the options are merged: "leave it out", not why its value is wrong
        refuse_options_on_resume(["config"] * bool(config) + [name for name in given if name != "data_dirs"], resume)
    settings = merge_config(given, config)
    if (not settings.data_dirs) == (resume is None):
        fail("give DATA folder(s) to train, or --resume RUN_DIR to continue a run (not both)", 2)
    require_tensorflow()
    from artery_edge.trainer.training import train as run_training

    with stdout_for_json(json_output):
        result = run_training(None if resume else settings, resume_dir=resume)
    report_training(result, json_output)


def report_training(result, json_output: bool) -> None:
    """The run folder and its figures (test split, or validation when there is none)."""
    if json_output:
        print_json({"run_dir": str(result.run_dir), **result.metrics})
        return
    m = result.metrics
    typer.echo(f"run: {result.run_dir}")
    summary = ", ".join(
        f"{k} {m[k]:.3f}" for k in ("accuracy", "sensitivity", "specificity", "roc_auc", "arcade_f1", "recall",
                                    "false_per_frame") if m.get(k) is not None
    )
    at = f" at threshold {m['threshold']:.3f} ({m['operating_point']})" if m.get("threshold") is not None else ""
    typer.echo(f"{m.get('evaluated_on', 'test')} ({m.get('n', m.get('frames'))} images){at}: {summary}; {result.seconds:.0f} s")


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
    from artery_edge.trainer.adaptation import adaptation_config
    from artery_edge.trainer.runs import load_run
    from artery_edge.trainer.samples import DataError
    from artery_edge.trainer.training import train as run_training

    size = image_size
    if size == 0:
        try:
            size = load_run(parent).image_size
        except DataError as exc:
            fail(f"--from: {exc}")
    config = adaptation_config([str(d) for d in data_dirs], str(parent), size, replay=replay, cut_at=cut_at,
                               init_blend=init_blend, split_pattern=split_pattern, output_dir=str(output_dir),
                               run_name=run_name, seed=seed)
    with stdout_for_json(json_output):
        result = run_training(config)
    report_training(result, json_output)


def parse_labels(labels: Optional[str]) -> Optional[list[str]]:
    """``A, B`` -> ``["A", "B"]``; None when not given (an empty name stays, for the checks to refuse)."""
    return None if labels is None else [label.strip() for label in labels.split(",")]


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
    try:  # options that do not apply to the asked precisions are usage errors, before TensorFlow loads
        options = ConvertOptions(quantize, out, parse_labels(labels), force, apply_temperature=temperature,
                                 calibration_images=calibration_images, calibration_data=calibration_data,
                                 weight_rounding=weight_rounding, float16_keep_below=float16_keep_below)
    except ConversionError as exc:
        fail(str(exc), 2)
    require_tensorflow()
    from artery_edge.converters.tflite import convert as run_conversion

    with stdout_for_json(json_output):
        results = run_conversion(source, options)
    if json_output:
        print_json([r.to_dict() for r in results])
        return
    from artery_edge.edge.text import terminal

    typer.echo(f"{'precision':<10}{'size (MB)':>10}{'vs float32':>12}{'time (s)':>10}  file")
    for r in results:
        ratio = f"{r.ratio_to_float32:.3f}" if r.ratio_to_float32 is not None else "n/a"
        typer.echo(terminal(f"{r.precision:<10}{r.bytes / 1e6:>10.2f}{ratio:>12}{r.seconds:>10.1f}  {r.path}"))


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
    from artery_edge.edge.text import terminal

    options = EvaluateOptions(models, data, threshold, target_sensitivity, bootstrap, prevalence)  # checked here
    check_can_create(out)  # before the work, not after it
    require_tensorflow()
    from artery_edge.evaluation.evaluate import evaluate as run_evaluation
    from artery_edge.evaluation.frames import is_frame_run, run_frame_evaluation
    from artery_edge.evaluation.report import metrics_table, write_evaluation

    if is_frame_run(run):  # a whole-frame run: lesions and ARCADE's F1, not labels
        folder, lines, report = run_frame_evaluation(run, options, out, quiet=json_output)
        typer.echo(json.dumps({"folder": str(folder), **report}, indent=2) if json_output else
                   "\n".join(map(terminal, lines + [f"report: {folder / 'report.md'}"])))
        return

    with stdout_for_json(json_output):
        result = run_evaluation(run, options, quiet=json_output)
        folder = write_evaluation(result, out)
    report = result.report
    if json_output:
        print_json({"folder": str(folder), **report})
        return
    typer.echo("\n".join(metrics_table(report, terminal)))
    for name, a in report["agreement_with_keras"].items():
        typer.echo(f"{terminal(name)}: labels identical to Keras {a['label_agreement']:.2%}, "
                   f"|dp| mean {a['mean_abs_diff']:.5f} max {a['max_abs_diff']:.5f}")
    typer.echo(terminal(f"report: {folder / 'report.md'}"))


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
    from artery_edge.edge.batch import expand_inputs
    from artery_edge.edge.decision import positive_index
    from artery_edge.edge.text import terminal
    from artery_edge.trainer.explain import GRID_FILE
    from artery_edge.trainer.explain import explain as run_explain
    from artery_edge.trainer.explain import write_explanations
    from artery_edge.trainer.runs import load_run

    trained = load_run(run)
    files, problems = expand_inputs(image)
    if not files:  # before the model loads
        fail(problems[0] if len(problems) == 1 else "no image files found in the given paths")
    with stdout_for_json(json_output):
        explanations, unreadable = run_explain(trained, files, layer)
    failed = problems + unreadable
    if not explanations:
        fail(failed[0] if len(failed) == 1 else f"no readable image to explain ({len(failed)} failed, e.g. {failed[0]})"
             if failed else "no image files found in the given paths")
    for message in failed:
        typer.echo(f"error: {terminal(message)}", err=True)
    folder, overlays = write_explanations(explanations, Path(out) if out else trained.run_dir / "explain",
                                          trained.class_names[positive_index(trained.class_names)])
    grid = folder / GRID_FILE
    skipped = len(problems) + len(unreadable)
    if json_output:
        print_json({"folder": str(folder), "grid": str(grid), "skipped": skipped,
                    "images": [{"file": str(e.path), "overlay": str(o), "label": e.label, "probability": e.probability}
                               for e, o in zip(explanations, overlays)]})
    else:
        for e, o in zip(explanations, overlays):
            typer.echo(terminal(f"{e.label:<12}{e.probability:>8.3f}  {e.path} -> {o.name}"))
        typer.echo(terminal(f"grid: {grid} ({len(explanations)} images, overlays beside it)"))
    if skipped:
        raise typer.Exit(1)


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
    from artery_edge.edge.bench import open_model
    from artery_edge.edge.classifier import Classifier
    from artery_edge.edge.scan_batch import Persistence
    from artery_edge.edge.stream import check_stream_options
    from artery_edge.edge.text import terminal

    source = stream_source(bool(image), camera, video, csv_file, every, persist)
    if threshold is not None and not 0 <= threshold <= 1:
        fail("--threshold must lie between 0 and 1", 2)
    check_threads(threads)
    picked, limit = frame_options(bool(image), frames)
    check_stream_options(limit, crop, 1 if every is None else every)
    persistence = Persistence.parse(persist) if persist else None
    if source is not None and display and not display_available():
        fail("no display found (DISPLAY / WAYLAND_DISPLAY unset): add --no-display", 2)
    model = model or reference_model_announced()
    # files are for patch classifiers: a whole-frame model is one error line pointing to `scan`
    classifier = (Classifier(model, labels=parse_labels(labels), threads=threads) if image
                  else open_model(model, parse_labels(labels), threads))
    typer.echo(terminal(f"model {model.name}: {classifier.precision}, backend {classifier.backend}"), err=True)
    if classifier.warning:  # a modified packaged reference run anyway: said here and in --json
        typer.echo(terminal(classifier.warning), err=True)
    if image:
        raise typer.Exit(infer_files(classifier, image, threshold, json_output, csv_file, picked, show_header))
    infer_stream(classifier, source, threshold, json_output, crop, display, every or 1, limit, show_header, persistence)


def stream_source(image: bool, camera: Optional[str], video: Optional[Path], csv_file: Optional[Path],
                  every: Optional[int], persist: Optional[str]) -> Optional[Union[int, str, Path]]:
    """The camera or video to stream (None with --image), once the options that belong to one
    kind of source are checked against the one given (exit 2)."""
    from artery_edge.edge.camera import parse_camera

    if sum([image, camera is not None, video is not None]) != 1:
        fail("give exactly one of --image, --camera or --video", 2)
    if csv_file is not None and not image:
        fail("--csv applies to --image only (use --json for camera/video results)", 2)
    if image and every is not None:
        fail("--every applies to --camera / --video only", 2)
    if image and persist is not None:
        fail("--persist applies to --camera / --video (files: scan --persist)", 2)
    return None if image else video if camera is None else parse_camera(camera)


def frame_options(image: bool, frames: Optional[str]) -> tuple[Optional[List[int]], Optional[int]]:
    """``--frames``: with --image the frame numbers of each DICOM cine, else a number of frames."""
    from artery_edge.edge.dicom import parse_frame_numbers

    if frames is None:
        return None, None
    if image:
        return parse_frame_numbers(frames), None
    try:
        return None, int(frames)
    except ValueError:
        fail(f"--frames must be a number of frames for --camera / --video, not {frames!r}", 2)


def reference_model_announced() -> Path:
    """The packaged reference model, said on stderr so no one mistakes it for their own."""
    from artery_edge.edge.reference import packaged_reference

    path = packaged_reference()
    typer.echo(f"no --model given: using the packaged reference model {path}", err=True)
    return path


def display_available() -> bool:
    """A window can open: always on Windows/macOS, on Linux only with an X11 or Wayland display."""
    import sys

    return not sys.platform.startswith("linux") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def infer_files(classifier, paths: List[Path], threshold, json_output: bool, csv_file: Optional[Path],
                frames: Optional[List[int]] = None, show_header: bool = False) -> int:
    """Print a table (or JSON) and stream the CSV; return 1 if any file failed, else 0."""
    from artery_edge.edge.batch import classify_files, expand_inputs, result_row, results_document
    from artery_edge.edge.progress import progress_bar
    from artery_edge.edge.report_csv import ResultsCsv
    from artery_edge.edge.text import terminal

    files, problems = expand_inputs(paths)
    for message in problems:
        typer.echo(f"error: {terminal(message)}", err=True)
    if not files:
        fail("no image files found in the given paths")
    if show_header:
        show_dicom_headers(files)
    fields = ["file", "frame", "sop_instance_uid", "label"] + [f"p_{label}" for label in classifier.labels] + [
        "inference_ms", "true_label", "size_note", "error"]
    table = ResultsCsv.create(csv_file, fields) if csv_file is not None else None  # a taken name: refused now
    results, rows, notes, done = [], [], [], set()
    positive = classifier.positive_label
    if not json_output:
        typer.echo(f"{'label':<12}{'p(' + terminal(positive) + ')':>16}{'ms':>9}  {'true class':<14}file")
    with table or contextlib.nullcontext(), progress_bar("classifying", quiet=json_output) as progress:
        for result in classify_files(classifier, files, threshold, frames):
            done.add(result.path)
            progress(len(done), len(files))
            results.append(result)
            for note in result.notes:
                notes.append(note)
                typer.echo(f"note: {terminal(note)}", err=True)
            p = result.prediction
            row = result_row(result, classifier.labels)
            rows.append(row)
            if table:
                table.write(row)
            if json_output:
                continue
            if result.error:
                typer.echo(f"error: {terminal(result.error)}", err=True)
            else:
                truth = "-" if result.correct is None else f"{result.true_label} {'ok' if result.correct else 'WRONG'}"
                frame = "" if result.frame is None else f" frame {result.frame}"
                typer.echo(f"{terminal(p.label):<12}{p.positive_probability:>16.4f}{p.total_ms:>9.1f}  "
                           f"{terminal(truth):<14}{terminal(row['file'])}{frame}")
    failed = sum(1 for r in results if r.error) + len(problems)
    judged = [r.correct for r in results if r.correct is not None]
    if judged and not json_output:
        typer.echo(f"{sum(judged)} of {len(judged)} correct (true class from the class folder)", err=True)
    if json_output:
        print_json(results_document(classifier, threshold, rows, failed, problems, notes))
    if failed:
        typer.echo(f"{failed} of {len(files) + len(problems)} file(s) failed", err=True)
    return 1 if failed else 0


def show_dicom_headers(paths) -> None:
    """``--show-header``: each DICOM file's header on stderr, identifying values masked (a file
    that cannot be read gets its error line where it is classified)."""
    from artery_edge.edge.dicom import header_lines, is_dicom, open_dicom
    from artery_edge.edge.errors import ImageError
    from artery_edge.edge.text import terminal

    for path in paths:
        if not is_dicom(path):
            continue
        try:
            lines = header_lines(open_dicom(path))
        except ImageError:
            continue
        typer.echo(terminal(f"header of {path} (identifying values masked):"), err=True)
        for line in lines:
            typer.echo(f"  {terminal(line)}", err=True)


def infer_stream(classifier, source, threshold, json_output, crop, display, every, frames, show_header=False,
                 persistence=None) -> None:
    from artery_edge.edge.dicom import is_dicom, open_cine
    from artery_edge.edge.scanner import FrameScanner
    from artery_edge.edge.stream import frame_record, frame_text, run_stream
    from artery_edge.edge.text import terminal

    if persistence is not None and not isinstance(classifier, FrameScanner):
        fail("--persist applies to whole-frame models (their lesions); this model classifies patches", 2)
    if isinstance(source, Path) and is_dicom(source):  # a cine plays at its own frame rate
        if show_header:
            show_dicom_headers([source])
        source = open_cine(source)
        typer.echo(terminal(f"{source.name}: {source.dicom.frames} frame(s)"), err=True)
        for note in source.notes:
            typer.echo(f"note: {terminal(note)}", err=True)

    def report(number: int, result, fps: float) -> None:
        if display or number % max(1, every) != 0:
            return
        typer.echo(json.dumps(frame_record(number, result, fps)) if json_output
                   else terminal(frame_text(number, result, fps, classifier.positive_label)))

    stats = run_stream(classifier, source, report, display, frames, crop, threshold, persistence)
    typer.echo(f"{stats.frames} frames, {stats.fps:.1f} FPS", err=True)


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
    from artery_edge.edge.camera import parse_camera
    from artery_edge.edge.serve import ServeOptions
    from artery_edge.edge.serve import serve as run_server

    if camera is not None and video is not None:
        fail("give at most one of --camera or --video", 2)
    source = video if camera is None else parse_camera(camera)
    check_threads(threads)
    options = ServeOptions(model or reference_model_announced(), source, host, port, token_file, threads, crop,
                           max_upload_mb)
    run_server(options, lambda line: typer.echo(line, err=True))


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
    from artery_edge.edge.metadata import read_model_bytes

    if runs < 1 or warmup < 0:
        fail("--runs must be >= 1 and --warmup >= 0", 2)
    check_threads(threads)
    model = model or [reference_model_announced()]
    for path in model:
        read_model_bytes(path)  # each a .tflite file, before any benchmark process starts
    results = benchmark_models(model, runs, warmup, threads, parse_labels(labels), frame)
    if json_output:
        print_json(results)
        return
    from artery_edge.edge.text import terminal

    header = f"{'model':<28}{'precision':>10}{'MB':>7}{'load ms':>9}{'p50 ms':>8}{'p95 ms':>8}{'mean ms':>9}{'path ms':>9}{'img/s':>8}{'RSS MB':>8}  backend"
    typer.echo(header)
    for r in results:
        typer.echo(f"{terminal(Path(r['model']).name)[:27]:<28}{terminal(r['precision'])[:9]:>10}{r['size_bytes'] / 1e6:>7.2f}{r['load_ms']:>9.1f}"
                   f"{r['p50_ms']:>8.3f}{r['p95_ms']:>8.3f}{r['mean_ms']:>9.3f}{r['pipeline_p50_ms']:>9.2f}{r['throughput_ips']:>8.0f}"
                   f"{r['peak_rss_mb']:>8.1f}  {r['backend']} ({r['threads'] or 'default'} threads)")


REPORT_IMAGES = 8


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
    from artery_edge.edge.text import terminal

    if count is not None and count < 1:
        fail("--count must be at least 1", 2)
    if not report and (reference is not None or data is not None or out is not None or count is not None):
        fail("--reference, --data, --count and --out apply to --report only", 2)
    model = model or reference_model_announced()
    if not report:
        from artery_edge.edge.inspect import format_summary, summarize

        summary = summarize(model)
        typer.echo(json.dumps(summary, indent=2, default=str) if json_output else format_summary(summary))
        return
    from artery_edge.evaluation.layer_report import check_pair, compare, report_images, write_report

    reference = reference or FLOAT_REFERENCE.file(model.parent)
    check_pair(model, reference)
    check_can_create(out)  # before the comparison, not after it
    images = report_images(model, data, count or REPORT_IMAGES)
    rows = compare(model, reference, images)
    files = write_report(rows, out or model.parent / f"{model.stem}_layer_report", model, reference, len(images))
    if json_output:
        print_json({"model": str(model), "reference": str(reference), "images": len(images),
                    "files": [str(f) for f in files], "layers": rows})
        return
    typer.echo(f"{len(rows)} layer outputs compared on {len(images)} image(s); the worst:")
    for row in rows[:5]:
        typer.echo(terminal(f"  {row['snr_db']:6.1f} dB  cosine {row['cosine']:.5f}  {row['layer']}"))
    typer.echo(terminal(f"report: {files[0]}  chart: {files[1]}"))


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
