"""Two whole-frame heads on one encoder, compared by one piece of code: the map head (`train --task
map`, trainer.frame_model) and a CenterNet-style centre head (trainer.center_head).

Trains the centre head on ARCADE's stenosis split with exactly the map baseline's budget (256 px,
MobileNetV2 alpha 1.0 from ImageNet, batch 8, stage 1: 2 epochs at 1e-3 on a frozen encoder,
stage 2: 8 epochs at 3e-4, cosine decay per stage as `--schedule cosine` gives the map run,
EarlyStopping patience 8 restoring the best val_loss, the map run's augmentation, seed 42),
writes ``model.keras`` and ``results.json`` into a new folder, then scores it on ARCADE val and
on the whole ADSD frames folder (VOC boxes):

    .venv/bin/python studies/frame_heads.py --out /work/runs37/heads-center-256
    .venv/bin/python studies/frame_heads.py --score-map-run /work/runs37/heads-map-256 \\
        --center-dir /work/runs37/heads-center-256 --out /work/runs37/heads-compare

The second form scores a finished map run the same way (its model.keras, decoded by
edge.lesions.decode_map at the run's stored threshold and min_area) and, when the centre folder
has results, times both Keras forward passes back to back and prints the comparison table.

Scores (trainer.frame_metrics): ARCADE F1 (the centre head's regions are its decoded boxes,
filled; the map head's are its thresholded map as in training, and also its boxes filled, for a
like-for-like line), recall and false lesions per frame by the centre rule, AP@0.5 of the marks
at the operating threshold (the project's convention) and of every mark at 0.05 (`ap50_all`), and
the FROC over thresholds 0.05..0.9. The centre head's threshold is chosen on ARCADE val by the
best mean ARCADE F1 (ties: the higher one); the threshold of the best recall - false/frame is
reported beside it; ADSD is scored at the thresholds chosen on ARCADE val (no tuning on it).
``--smoke`` runs the whole path in a minute (a few frames, 64 px, alpha 0.35, no ImageNet).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from artery_edge.edge.annotations import Frame, Lesion, draw_lesions, load_frames
from artery_edge.edge.imaging import load_image
from artery_edge.edge.lesions import decode_map, kept_map
from artery_edge.trainer.frame_metrics import arcade_f1, average_precision, count_lesions, full_size, truth_outlines

ARCADE = Path("/work/shared/data/arcade-stenosis")
ADSD = Path("/work/shared/data/adsd-frames")
DEFAULT_OUT = Path("/work/runs37/heads-center-256")
DEFAULT_COMPARE = Path("/work/runs37/heads-compare")
GRID = tuple(round(float(t), 2) for t in np.arange(0.05, 0.91, 0.05))
# the FROC again in steps of 0.01 (counts only), for the readings at 0.5 and 1 false/frame: the centre
# head's peaks crowd into 0.15..0.3, where the 0.05 grid has no point between 0.3 and 1.3 false/frame
FINE_GRID = tuple(round(float(t), 2) for t in np.arange(0.05, 0.905, 0.01))
TIMING_RUNS = 20
FPF_POINTS = (0.5, 1.0)  # false lesions per frame at which the FROC's recall is read
SMOKE_FRAMES = {"train": 16, "val": 8, "adsd": 8}

Marks = Callable[[int, float], list]  # frame number, threshold -> FoundLesions
Regions = Callable[[int, float, list], np.ndarray]  # frame number, threshold, its marks -> frame-sized bool mask


def log(message: str) -> None:
    print(f"{datetime.now():%Y-%m-%d %H:%M:%S} {message}", flush=True)


def recipe(smoke: bool, data: Path):
    """The map baseline's recipe (its `train --task map` command line), or the smoke test's."""
    from artery_edge.trainer.config import TrainConfig

    config = TrainConfig(
        data_dirs=[str(data)], task="map", image_size=256, alpha=1.0, weights="imagenet", batch_size=8,
        epochs=2, learning_rate=1e-3, fine_tune_epochs=8, fine_tune_learning_rate=3e-4, schedule="cosine",
        patience=8, rotation=0.04, zoom=0.15, contrast=0.2, brightness=0.1, flip=True, seed=42,
        tensorboard=False)
    if smoke:
        config.image_size, config.alpha, config.weights, config.epochs, config.fine_tune_epochs = 64, 0.35, "none", 1, 1
    return config.validate()


def new_folder(path: Path) -> Path:
    """``path`` created empty; an existing one is never overwritten (exit 2, saying so)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.mkdir()
    except FileExistsError:
        sys.exit(f"{path} exists: give a new --out (results are never overwritten)")
    return path


def images_of(frames: Sequence[Frame], size: int) -> np.ndarray:
    """Model inputs as on the device (edge.imaging.load_image): uint8 (N, size, size, 3)."""
    return np.stack([load_image(frame.path, size) for frame in frames])


def outputs_of(model, images: np.ndarray, batch_size: int = 8) -> np.ndarray:
    return np.concatenate([np.asarray(model(images[i:i + batch_size].astype(np.float32), training=False))
                           for i in range(0, len(images), batch_size)])


def forward_ms(models: dict, size: int, runs: int = TIMING_RUNS) -> dict[str, float]:
    """Median ms of one Keras forward pass (batch 1, a grey frame) per model: ``model(x)`` as the
    study's scoring calls it, and the same inside a ``tf.function`` (``NAME_graph``: without
    Keras' eager overhead per call, nearer what the network itself costs). The models take turns
    run by run, so that a busy moment of the shared CPU hits both alike."""
    import tensorflow as tf

    frame = tf.constant(np.full((1, size, size, 3), 128.0, np.float32))
    calls = {}
    for name, model in models.items():
        calls[name] = lambda x, model=model: model(x, training=False)
        calls[f"{name}_graph"] = tf.function(lambda x, model=model: model(x, training=False))
    times: dict[str, list[float]] = {name: [] for name in calls}
    for call in calls.values():
        for _ in range(3):
            call(frame)  # warm-up: tracing and first allocations
    for _ in range(runs):
        for name, call in calls.items():
            started = time.perf_counter()
            np.asarray(call(frame))
            times[name].append((time.perf_counter() - started) * 1000)
    return {name: round(statistics.median(values), 2) for name, values in times.items()}


def box_regions(frames: Sequence[Frame]) -> Regions:
    """ARCADE regions of box marks: each decoded box filled in a frame-sized mask."""
    def regions(number: int, threshold: float, marks: list) -> np.ndarray:
        frame = frames[number]
        return draw_lesions([Lesion(mark.box) for mark in marks], (frame.width, frame.height),
                            (frame.width, frame.height), "box") > 0
    return regions


def score_at(frames: Sequence[Frame], outlines, marks_at: Marks, threshold: float,
             regions: dict[str, Regions]) -> dict:
    """One threshold: ARCADE F1 per kind of region (``arcade_f1`` first), centre-rule counts, AP50."""
    f1 = {name: [] for name in regions}
    found = truths = false = 0
    pairs = []
    for number, frame in enumerate(frames):
        marks = marks_at(number, threshold)
        counts = count_lesions(marks, frame.lesions)
        found, truths, false = found + counts.found, truths + counts.truths, false + counts.false
        pairs.append((marks, frame.lesions))
        for name, region in regions.items():
            value = arcade_f1(region(number, threshold, marks), outlines[number])
            if value is not None:
                f1[name].append(value)
    row = {"threshold": threshold}
    row.update({name: round(float(np.mean(values)), 4) if values else None for name, values in f1.items()})
    row.update({"recall": round(found / truths, 4) if truths else None,
                "false_per_frame": round(false / len(frames), 4), "ap50": round(average_precision(pairs), 4),
                "frames": len(frames), "lesions": truths})
    return row


def froc_reading(froc: list[dict]) -> dict:
    """The FROC's best recall at no more than 0.5 and 1 false lesion per frame (and its threshold),
    read off :data:`FINE_GRID`'s points."""
    reading = {}
    for limit in FPF_POINTS:
        within = [row for row in froc if row["false_per_frame"] <= limit and row["recall"] is not None]
        best = max(within, key=lambda row: (row["recall"], row["threshold"]), default=None)
        reading[f"recall_at_{limit:g}_fpf"] = None if best is None else {
            "recall": best["recall"], "false_per_frame": best["false_per_frame"], "threshold": best["threshold"]}
    return reading


def evaluate_head(frames: Sequence[Frame], marks_at: Marks, regions: dict[str, Regions],
                  threshold: Optional[float], froc_threshold: Optional[float] = None) -> dict:
    """Scores on one set of frames. ``threshold`` None: chosen here by the best mean ARCADE F1 over
    :data:`GRID` (F1 computed at every grid point); else fixed (from validation, or the run's own)."""
    outlines = truth_outlines(frames)
    choose = threshold is None
    froc = [score_at(frames, outlines, marks_at, t, regions if choose else {}) for t in GRID]
    for row in froc:
        row.pop("frames"), row.pop("lesions")
    if choose:
        threshold = max(froc, key=lambda row: (row["arcade_f1"] or 0.0, row["threshold"]))["threshold"]
    if froc_threshold is None:
        froc_threshold = max(froc, key=lambda row: ((row["recall"] or 0.0) - row["false_per_frame"],
                                                    row["threshold"]))["threshold"]
    at = score_at(frames, outlines, marks_at, threshold, regions)
    at_froc = score_at(frames, outlines, marks_at, froc_threshold, regions)
    every_mark = score_at(frames, outlines, marks_at, GRID[0], {})
    fine = [score_at(frames, outlines, marks_at, t, {}) for t in FINE_GRID]
    return {"threshold": threshold, "threshold_rule": "arcade-f1 (chosen here)" if choose else "given",
            "at_threshold": at, "froc_threshold": froc_threshold,
            "froc_threshold_rule": "best recall - false/frame", "at_froc_threshold": at_froc,
            "ap50_all": every_mark["ap50"], **froc_reading(fine), "froc": froc,
            "froc_fine": [{key: row[key] for key in ("threshold", "recall", "false_per_frame")} for row in fine]}


def decode_ms(frames: Sequence[Frame], marks_at: Marks, threshold: float) -> float:
    """Median ms of the NumPy decoding of one frame's output (at the operating threshold)."""
    times = []
    for number in range(len(frames)):
        started = time.perf_counter()
        marks_at(number, threshold)
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 3)


def load_sets(smoke: bool):
    """ARCADE's published split (train, val) and the whole ADSD folder; a few frames each with --smoke."""
    from artery_edge.trainer.frame_training import split_frames

    split = split_frames(recipe(smoke, ARCADE))
    train, val, adsd = split.train, split.val, load_frames(ADSD)
    if smoke:
        train, val, adsd = (frames[:SMOKE_FRAMES[name]] for frames, name in
                            ((train, "train"), (val, "val"), (adsd, "adsd")))
    return train, val, adsd


# --- the centre head: training ---------------------------------------------------------------------

def centre_datasets(config, train: Sequence[Frame], val: Sequence[Frame]):
    """Augmented training pairs (frame, target rendered after the geometric draw) and plain
    validation pairs (targets rendered once), batched as the map run's."""
    import tensorflow as tf

    from artery_edge.trainer.center_head import augment_centres, frame_target, padded_boxes

    started = time.monotonic()
    train_images, val_images = images_of(train, config.image_size), images_of(val, config.image_size)
    val_targets = np.stack([frame_target(frame, config.image_size) for frame in val])
    log(f"frames: {len(train)} train, {len(val)} validation, decoded at {config.image_size} px in "
        f"{time.monotonic() - started:.0f} s")
    train_set = (tf.data.Dataset.from_tensor_slices((train_images, padded_boxes(train)))
                 .shuffle(len(train), seed=config.seed, reshuffle_each_iteration=True)
                 .map(augment_centres(config, config.seed), num_parallel_calls=tf.data.AUTOTUNE)
                 .batch(config.batch_size).prefetch(tf.data.AUTOTUNE))
    val_set = tf.data.Dataset.from_tensor_slices((val_images.astype(np.float32), val_targets)).batch(config.batch_size)
    return train_set, val_set


def fit_centre(model, config, train_set, val_set, out: Path) -> dict:
    """The map run's two stages (trainer.frame_training.fit_stage) with the centre loss: a new Adam
    per stage, cosine decay over the stage, EarlyStopping restoring the best val_loss."""
    import keras

    from artery_edge.trainer.center_head import centre_loss
    from artery_edge.trainer.frame_model import set_encoder_trainable

    ran = {}
    for stage, epochs, rate in ((1, config.epochs, config.learning_rate),
                                (2, config.fine_tune_epochs, config.fine_tune_learning_rate)):
        set_encoder_trainable(model, stage == 2)
        steps = len(train_set)
        schedule = keras.optimizers.schedules.CosineDecay(rate, max(1, epochs * steps)) \
            if config.schedule == "cosine" else rate
        model.compile(optimizer=keras.optimizers.Adam(schedule), loss=centre_loss)
        log(f"stage {stage}: {epochs} epochs at {rate:g} ({config.schedule}), encoder "
            f"{'trainable' if stage == 2 else 'frozen'}")
        history = model.fit(train_set, validation_data=val_set, epochs=epochs, verbose=2, callbacks=[
            keras.callbacks.CSVLogger(str(out / f"history_stage{stage}.csv")),
            keras.callbacks.EarlyStopping(patience=config.patience, restore_best_weights=True)])
        ran[f"stage{stage}"] = {key: [round(v, 5) for v in values] for key, values in history.history.items()}
    return ran


def train_centre_head(args) -> None:
    import keras

    from artery_edge.trainer import runs
    from artery_edge.trainer.center_head import build_center_model

    out = new_folder(args.out)
    config = recipe(args.smoke, ARCADE)
    log(f"centre head -> {out} (config: {json.dumps(config.to_dict())})")
    train, val, adsd = load_sets(args.smoke)
    keras.utils.set_random_seed(config.seed)
    model = build_center_model(config)
    train_set, val_set = centre_datasets(config, train, val)
    started = time.monotonic()
    history = fit_centre(model, config, train_set, val_set, out)
    seconds = round(time.monotonic() - started, 1)
    log(f"trained in {seconds:.0f} s")
    runs.save_keras(keras.Model(model.inputs, model.outputs, name=model.name), out / "model.keras")
    results = {"head": "centre", "model": str(out / "model.keras"), "config": config.to_dict(),
               "smoke": args.smoke, "training_seconds": seconds, "history": history,
               **score_centre(model, val, adsd, config.image_size)}
    results["ms_per_frame"] = forward_ms({"centre": model}, config.image_size)
    runs.write_json(out / "results.json", results)
    log(f"wrote {out / 'results.json'} (forward pass {results['ms_per_frame']['centre']} ms per frame)")


def centre_marks(frames: Sequence[Frame], outputs: np.ndarray) -> Marks:
    from artery_edge.trainer.center_head import decode_centres

    return lambda number, threshold: decode_centres(outputs[number], threshold,
                                                    (frames[number].width, frames[number].height))


def score_centre(model, val: Sequence[Frame], adsd: Sequence[Frame], size: int) -> dict:
    """The centre head on ARCADE val (its thresholds chosen there) and ADSD (at val's thresholds)."""
    results: dict = {}
    for name, frames in (("arcade_val", val), ("adsd", adsd)):
        marks = centre_marks(frames, outputs_of(model, images_of(frames, size)))
        given = results.get("arcade_val", {})
        results[name] = evaluate_head(frames, marks, {"arcade_f1": box_regions(frames)},
                                      given.get("threshold"), given.get("froc_threshold"))
        results[name]["decode_ms"] = decode_ms(frames, marks, results[name]["threshold"])
        log(f"centre head, {name}: {one_line(results[name])}")
    return results


def one_line(result: dict) -> str:
    at = result["at_threshold"]
    return (f"threshold {result['threshold']:.2f}: F1 {at['arcade_f1']}, recall {at['recall']}, "
            f"{at['false_per_frame']} false/frame, AP50 {at['ap50']} (all marks {result['ap50_all']})")


# --- the map head: scoring a finished run ----------------------------------------------------------

def map_marks(frames: Sequence[Frame], maps: np.ndarray, min_area: int) -> Marks:
    return lambda number, threshold: decode_map(maps[number], threshold, (frames[number].width, frames[number].height),
                                                min_area)


def map_regions(frames: Sequence[Frame], maps: np.ndarray, min_area: int) -> Regions:
    """The map's own ARCADE regions, as training chose its threshold (trainer.frame_metrics.score_maps)."""
    def regions(number: int, threshold: float, marks: list) -> np.ndarray:
        frame = frames[number]
        return full_size(kept_map(maps[number], threshold, min_area), frame.width, frame.height) >= threshold
    return regions


def map_run(run_dir: Path):
    """A finished whole-frame run, read through the project's one reader (``trainer.runs.load_run``:
    its record, model.keras checked against the SHA-256 it recorded)."""
    from artery_edge.trainer.runs import load_run

    run = load_run(run_dir)
    if run.task != "map":
        sys.exit(f"{run.run_dir} is a {run.task} run, not a whole-frame map run")
    return run


def score_map_run(args) -> None:
    run = map_run(args.score_map_run)
    out = new_folder(args.out)
    model = run.keras_model()
    area = int(run.decoding.get("min_area", 1))
    log(f"map run {run.run_dir}: threshold {run.threshold}, min area {area} map px -> {out}")
    _, val, adsd = load_sets(args.smoke)
    results = {"head": "map", "run": str(run.run_dir), "training_seconds": run.about.get("seconds"),
               "min_area": area, "run_metrics": run.metrics}
    for name, frames in (("arcade_val", val), ("adsd", adsd)):
        maps = outputs_of(model, images_of(frames, run.image_size))[..., 0]
        marks = map_marks(frames, maps, area)
        given = results.get("arcade_val", {})
        results[name] = evaluate_head(frames, marks, {"arcade_f1": map_regions(frames, maps, area),
                                                      "arcade_f1_boxes": box_regions(frames)},
                                      given.get("threshold", run.threshold), given.get("froc_threshold"))
        results[name]["decode_ms"] = decode_ms(frames, marks, results[name]["threshold"])
        log(f"map head, {name}: {one_line(results[name])}")
    models = {"map": model}
    trained = args.center_dir / "results.json"
    if not trained.is_file():
        results["ms_per_frame"] = forward_ms(models, run.image_size)
        write(out / "map_results.json", results)
        log(f"no centre results in {args.center_dir}: scored the map head alone")
        return
    import keras

    models["centre"] = keras.models.load_model(args.center_dir / "model.keras", compile=False)
    record = read_json(trained)
    # scored again here from its saved model, by the same code on the same frames as the map head
    centre = {"head": "centre", "model": str(args.center_dir / "model.keras"),
              **{key: record.get(key) for key in ("config", "training_seconds", "history")},
              **score_centre(models["centre"], val, adsd, models["centre"].input_shape[1])}
    results["ms_per_frame"] = forward_ms(models, run.image_size)
    write(out / "map_results.json", results)
    comparison = {"map": results, "centre": centre, "ms_per_frame": results["ms_per_frame"]}
    write(out / "comparison.json", comparison)
    print("\n".join(table(comparison)))


def read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def write(path: Path, data: dict) -> None:
    from artery_edge.trainer import runs

    runs.write_json(path, data)
    log(f"wrote {path}")


V, A, AT, AF = "arcade_val", "adsd", "at_threshold", "at_froc_threshold"
ROWS = (  # label, the map head's keys, the centre head's keys (its only regions are its boxes)
    ("ARCADE val threshold (ARCADE-F1 rule)", (V, "threshold"), (V, "threshold")),
    ("ARCADE val F1 (own regions)", (V, AT, "arcade_f1"), (V, AT, "arcade_f1")),
    ("ARCADE val F1 (boxes filled)", (V, AT, "arcade_f1_boxes"), (V, AT, "arcade_f1")),
    ("ARCADE val recall (centre rule)", (V, AT, "recall"), (V, AT, "recall")),
    ("ARCADE val false/frame", (V, AT, "false_per_frame"), (V, AT, "false_per_frame")),
    ("ARCADE val AP50 (marks at threshold)", (V, AT, "ap50"), (V, AT, "ap50")),
    ("ARCADE val AP50 (all marks >= 0.05)", (V, "ap50_all"), (V, "ap50_all")),
    ("ARCADE val threshold (recall - false rule)", (V, "froc_threshold"), (V, "froc_threshold")),
    ("  recall there", (V, AF, "recall"), (V, AF, "recall")),
    ("  false/frame there", (V, AF, "false_per_frame"), (V, AF, "false_per_frame")),
    ("ADSD recall", (A, AT, "recall"), (A, AT, "recall")),
    ("ADSD false/frame", (A, AT, "false_per_frame"), (A, AT, "false_per_frame")),
    ("ADSD AP50 (marks at threshold)", (A, AT, "ap50"), (A, AT, "ap50")),
    ("ADSD AP50 (all marks >= 0.05)", (A, "ap50_all"), (A, "ap50_all")),
    ("ADSD F1 vs boxes (own regions)", (A, AT, "arcade_f1"), (A, AT, "arcade_f1")),
    ("training seconds", ("training_seconds",), ("training_seconds",)),
)


def table(comparison: dict) -> list[str]:
    """The comparison as a Markdown table (one column per head)."""
    def cell(head: str, keys: tuple) -> str:
        value = comparison[head]
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        return "-" if value is None else (f"{value:.3f}" if isinstance(value, float) else str(value))

    def froc(head: str, where: str, limit: float) -> str:
        point = comparison[head][where].get(f"recall_at_{limit:g}_fpf")
        return "-" if point is None else f"{point['recall']:.3f} ({point['false_per_frame']:.2f} @ {point['threshold']:.2f})"

    lines = ["| | map head | centre head |", "|---|---|---|"]
    lines += [f"| {label} | {cell('map', mine)} | {cell('centre', theirs)} |" for label, mine, theirs in ROWS]
    for where in ("arcade_val", "adsd"):
        for limit in FPF_POINTS:
            lines.append(f"| {where} FROC recall at <= {limit:g} false/frame (fpf @ threshold) | "
                         f"{froc('map', where, limit)} | {froc('centre', where, limit)} |")
    ms = comparison["ms_per_frame"]
    lines.append(f"| Keras forward ms/frame, model(x) (batch 1, back to back) | {ms['map']} | {ms.get('centre', '-')} |")
    lines.append(f"| the same in a tf.function | {ms['map_graph']} | {ms.get('centre_graph', '-')} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()),
                                     epilog="The recipe and the scores: see the module docstring.")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"new folder for the results (default {DEFAULT_OUT}, with --score-map-run {DEFAULT_COMPARE})")
    parser.add_argument("--score-map-run", type=Path, default=None, metavar="RUN",
                        help="score this finished map run (train --task map) instead of training the centre head")
    parser.add_argument("--center-dir", type=Path, default=DEFAULT_OUT,
                        help="with --score-map-run: the centre head's folder to compare with (default %(default)s)")
    parser.add_argument("--smoke", action="store_true",
                        help="a minute's check of the whole path: 16/8/8 frames, 64 px, alpha 0.35, 1 + 1 epochs")
    args = parser.parse_args()
    args.out = args.out or (DEFAULT_COMPARE if args.score_map_run else DEFAULT_OUT)
    if args.score_map_run:
        score_map_run(args)
    else:
        train_centre_head(args)


if __name__ == "__main__":
    main()
