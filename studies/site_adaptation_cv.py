"""Repeated stratified k-fold cross-validation of site adaptation on a small site dataset.

With ~125 labelled patches a single validation figure means little (25 images: +-0.2), so
every model here is measured on held-out folds of the whole site set, several times over:

- ``adapted (int8)``: the parent adapted with ``artery-edge adapt``'s recipe on the other folds,
  converted to INT8, run through ``edge.Classifier`` at its stored threshold (what a device does);
  ``adapted (keras)`` is the same model in Keras, for the conversion's share;
- ``parent zero-shot``: the parent as shipped (its own threshold), on the same folds;
- ``parent, threshold re-fit``: the parent's probabilities, threshold (youden) re-chosen on the
  inner validation part of the other folds: what labels buy without training;
- ``ImageNet only``: the same recipe on the same folds, from ImageNet weights, no parent.

Inside each training fold, 20 % (stratified) is the inner validation split that picks epochs,
temperature and threshold, as the site's validation files do in ``adapt``.

    .venv/bin/python studies/site_adaptation_cv.py --parent models/reference \\
        --data ../shared/data/xca-site-b --folds 5 --repeats 2
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from artery_edge.trainer.metrics import binary_metrics  # noqa: E402
from artery_edge.trainer.operating_point import choose_threshold  # noqa: E402
from artery_edge.trainer.samples import Sample  # noqa: E402
from artery_edge.trainer.scan import scan_dataset  # noqa: E402

METRICS = ("roc_auc", "accuracy", "sensitivity", "specificity")
INNER_VALIDATION = 0.2
PARENT_ONLY = ("init_blend",)  # recipe values that mean nothing without a parent: the ImageNet-only model drops them


def stratified_folds(samples: list[Sample], k: int, seed: int) -> list[list[Sample]]:
    """k folds, each class dealt round-robin after a seeded shuffle (sizes differ by at most one)."""
    rng = np.random.default_rng(seed)
    folds: list[list[Sample]] = [[] for _ in range(k)]
    offset = 0
    for label in sorted({s.label for s in samples}):
        members = [s for s in samples if s.label == label]
        for rank, i in enumerate(rng.permutation(len(members))):
            folds[(rank + offset) % k].append(members[i])
        offset += len(members)
    return folds


def write_fold_split(path: Path, train: list[Sample], test: list[Sample], seed: int,
                     train_share: float = 1.0) -> dict[Path, str]:
    """A split file: the held-out fold is the test split, 20 % of the rest (stratified) validates;
    ``train_share`` < 1 lists only that share of the other files (a learning curve: unlisted files sit out).
    Returns what it wrote (file -> subset)."""
    rng = np.random.default_rng(seed)
    rows = [(s.path, "test") for s in test]
    for label in sorted({s.label for s in train}):
        members = [s for s in train if s.label == label]
        order = rng.permutation(len(members))
        n_val = max(1, round(len(members) * INNER_VALIDATION))
        n_train = round((len(members) - n_val) * train_share)
        rows += [(members[i].path, "validation" if rank < n_val else "train")
                 for rank, i in enumerate(order) if rank < n_val + n_train]
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "subset"])
        writer.writerows((str(p), subset) for p, subset in rows)
    return dict(rows)


def cv_folds(samples: list[Sample], k: int, repeats: range, work: Path,
             train_share: float = 1.0) -> Iterator[tuple[int, int, list[Sample], Path, dict[Path, str]]]:
    """(repeat, fold, held-out samples, split file, its file -> subset) for every fold: the folds of
    repeat r are seeded by r."""
    for repeat in repeats:
        folds = stratified_folds(samples, k, seed=repeat)
        for index, test in enumerate(folds):
            split_file = work / f"split-r{repeat}-f{index}.csv"
            subsets = write_fold_split(split_file, [s for j, f in enumerate(folds) if j != index for s in f], test,
                                       seed=1000 * repeat + index, train_share=train_share)
            yield repeat, index, test, split_file, subsets


def figures(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict:
    """The fold's figures, and what they came from (so thresholds and ensembles can be re-analysed)."""
    called = (scores >= threshold).astype(int)
    found = binary_metrics(labels, scores, called, positive=1)
    return {**{m: found[m] for m in METRICS}, "threshold": float(threshold),
            "labels": [int(v) for v in labels], "scores": [float(v) for v in scores]}


def device_scores(model_path: Path, files: list[Path]) -> tuple[np.ndarray, float]:
    """p(positive) of each file through the device runtime, and the file's stored threshold."""
    from artery_edge.edge.classifier import Classifier

    classifier = Classifier(model_path)
    scores = np.array([classifier.predict(f).positive_probability for f in files])
    return scores, classifier.threshold if classifier.threshold is not None else 0.5


def keras_scores(run_dir: Path, files: list[Path]) -> tuple[np.ndarray, float]:
    from artery_edge.trainer.predict import KerasPredictor

    predictor = KerasPredictor.from_run(run_dir)
    return predictor.probabilities(files)[:, 1], predictor.threshold if predictor.threshold is not None else 0.5


def recipe_overrides(pairs: list[str]) -> dict:
    """``KEY=VALUE`` pairs as TrainConfig values, typed like the field's default (both models get them)."""
    from artery_edge.trainer.config import TYPES as types

    found = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        key = key.replace("-", "_")
        if key not in types or not value:
            raise SystemExit(f"error: --set {pair!r}: expected KEY=VALUE with KEY a training option")
        kind = types[key]
        found[key] = value.lower() in ("1", "true", "yes") if kind is bool else kind(value)
    return found


def summarise(rows: list[dict]) -> dict:
    """Mean and standard deviation over folds, per model and metric."""
    table: dict = {}
    for model in dict.fromkeys(r["model"] for r in rows):
        mine = [r for r in rows if r["model"] == model]
        table[model] = {m: (float(np.mean([r[m] for r in mine])), float(np.std([r[m] for r in mine], ddof=1))
                            if len(mine) > 1 else 0.0) for m in METRICS}
        table[model]["folds"] = len(mine)
        table[model]["seconds_per_fold"] = float(np.mean([r.get("seconds", 0.0) for r in mine]))
    return table


def markdown(table: dict) -> str:
    lines = ["| model | " + " | ".join(METRICS) + " | folds | s / fold |", "|---|" + "---|" * (len(METRICS) + 2)]
    for model, row in table.items():
        cells = [f"{row[m][0]:.3f} ± {row[m][1]:.3f}" for m in METRICS]
        lines.append(f"| {model} | " + " | ".join(cells) + f" | {row['folds']} | {row['seconds_per_fold']:.0f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parent", type=Path, required=True, help="The run to adapt (e.g. models/reference).")
    parser.add_argument("--data", type=Path, required=True, help="The site's class folders (all files are pooled).")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--first-repeat", type=int, default=0,
                        help="Seed of the first repeat's folds: fresh folds for a confirmation after a screen.")
    parser.add_argument("--image-size", type=int, default=0, help="Adaptation input size (0: the parent's).")
    parser.add_argument("--train-share", type=float, default=1.0,
                        help="Adapt on this share of each fold's training files (a learning curve; the inner "
                             "validation and the held-out fold stay whole).")
    parser.add_argument("--replay", type=int, default=0, help="Replay images per class (see adapt --replay).")
    parser.add_argument("--no-imagenet", action="store_true", help="Skip the ImageNet-only baseline.")
    parser.add_argument("--no-int8", action="store_true",
                        help="Skip the INT8 conversion (a quicker screen of recipes; the table needs it).")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="Override a value of the adaptation recipe for both trained models "
                             "(e.g. fine_tune_epochs=30); repeatable.")
    parser.add_argument("--out", type=Path, default=None, help="Write the rows and the table as JSON here.")
    parser.add_argument("--resume", action="store_true",
                        help="Keep the folds already in --out (same parent and size) and measure the rest.")
    args = parser.parse_args()
    if not 0 < args.train_share <= 1:
        parser.error(f"--train-share must lie in (0, 1], found {args.train_share:g}")

    from artery_edge.converters.options import ConvertOptions
    from artery_edge.converters.tflite import convert
    from artery_edge.trainer.adaptation import ADAPTATION_RECIPE, adaptation_config
    from artery_edge.trainer.config import TrainConfig
    from artery_edge.trainer.runs import load_run
    from artery_edge.trainer.training import train

    start = time.perf_counter()
    parent = load_run(args.parent)
    size = args.image_size or parent.image_size
    samples = scan_dataset(args.data).samples
    files = [s.path for s in samples]
    parent_scores = dict(zip(files, keras_scores(parent.run_dir, files)[0]))
    parent_threshold = parent.threshold if parent.threshold is not None else 0.5
    work = Path(tempfile.mkdtemp(prefix="site-cv-"))
    quiet = lambda message: None  # noqa: E731
    overrides = recipe_overrides(args.set)
    recipe = {**ADAPTATION_RECIPE, **overrides, "replay": args.replay,
              "train_share": args.train_share}  # what --resume must find unchanged
    common = {"split_pattern": "", "split_file": "", "sample_grid_size": 0, "output_dir": str(work), **overrides}
    rows: list[dict] = []
    kept: list[dict] = []
    if args.resume and args.out and args.out.exists():
        previous = json.loads(args.out.read_text())
        if (previous.get("parent"), previous.get("image_size"), previous.get("recipe")) == (
                str(parent.run_dir), size, recipe):
            kept = previous["rows"]
    needed = ({"adapted (keras)"} if args.no_int8 else {"adapted (int8)"}) | (
        set() if args.no_imagenet else {"ImageNet only (keras)"})
    for repeat, index, test, split_file, subsets in cv_folds(samples, args.folds, range(
            args.first_repeat, args.first_repeat + args.repeats), work, args.train_share):
        test_files = [s.path for s in test]
        labels = np.array([s.label for s in test])
        where = {"repeat": repeat, "fold": index}
        done = [r for r in kept if r["repeat"] == repeat and r["fold"] == index]
        if needed <= {r["model"] for r in done}:
            rows += done
            print(f"repeat {repeat} fold {index}: kept from {args.out}", file=sys.stderr, flush=True)
            continue

        scores = np.array([parent_scores[f] for f in test_files])
        rows.append({"model": "parent zero-shot", **where, **figures(labels, scores, parent_threshold)})
        val = [s for s in samples if subsets.get(s.path) == "validation"]
        refit = choose_threshold(np.array([s.label for s in val]) == 1,
                                 np.array([parent_scores[s.path] for s in val]), "youden")
        rows.append({"model": "parent, threshold re-fit", **where, **figures(labels, scores, refit)})

        t = time.perf_counter()
        config = adaptation_config([str(args.data)], str(parent.run_dir), size, replay=args.replay,
                                   **{**common, "split_file": str(split_file)})
        run = train(config, log=quiet, verbose=0)
        trained = time.perf_counter() - t
        scores, threshold = keras_scores(run.run_dir, test_files)
        rows.append({"model": "adapted (keras)", **where, **figures(labels, scores, threshold),
                     "seconds": trained})
        if not args.no_int8:
            result = convert(run.run_dir, ConvertOptions(["int8"], calibration_images=100))[0]
            scores, threshold = device_scores(Path(result.path), test_files)
            rows.append({"model": "adapted (int8)", **where, **figures(labels, scores, threshold),
                         "seconds": time.perf_counter() - t})

        if not args.no_imagenet:
            t = time.perf_counter()
            alone = {k: v for k, v in {**ADAPTATION_RECIPE, **common}.items()
                     if k not in (*PARENT_ONLY, "split_pattern", "test_fraction")}
            config = TrainConfig(**{**alone, "epochs": 10, "split_file": str(split_file)},
                                 data_dirs=[str(args.data)], weights="imagenet",
                                 alpha=parent.config.alpha, image_size=size)
            run = train(config, log=quiet, verbose=0)
            scores, threshold = keras_scores(run.run_dir, test_files)
            rows.append({"model": "ImageNet only (keras)", **where, **figures(labels, scores, threshold),
                         "seconds": time.perf_counter() - t})
        if args.out:  # after every fold: an interrupted run keeps what it measured
            args.out.write_text(json.dumps({"parent": str(parent.run_dir), "image_size": size, "set": overrides,
                                            "recipe": recipe, "first_repeat": args.first_repeat, "rows": rows},
                                           default=float))
        done = [r for r in rows if r["repeat"] == repeat and r["fold"] == index]
        print(f"repeat {repeat} fold {index}: " + "; ".join(
            f"{r['model']} acc {r['accuracy']:.2f} auc {r['roc_auc']:.2f}" for r in done)
            + f" ({time.perf_counter() - start:.0f} s so far)", file=sys.stderr, flush=True)
    table = summarise(rows)
    order = ["adapted (int8)", "adapted (keras)", "parent zero-shot", "parent, threshold re-fit", "ImageNet only (keras)"]
    table = {k: table[k] for k in order if k in table}
    wall = time.perf_counter() - start
    print(f"{args.repeats} x {args.folds}-fold CV on {args.data.name} ({len(samples)} patches), parent "
          f"{parent.run_dir.name}, adaptation at {size} px{''.join(f', {k}={v}' for k, v in overrides.items())}"
          f"{f', {args.train_share:g} of the training files' if args.train_share < 1 else ''}; "
          f"mean ± sd over folds; {wall / 60:.1f} min")
    print(markdown(table))
    if args.out:
        args.out.write_text(json.dumps({"parent": str(parent.run_dir), "image_size": size, "set": overrides,
                                        "recipe": recipe,
                                        "folds": args.folds, "repeats": args.repeats, "first_repeat": args.first_repeat,
                                        "wall_seconds": wall,
                                        "table": table, "rows": rows}, default=float))


if __name__ == "__main__":
    main()
