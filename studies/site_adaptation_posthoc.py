"""What can be done with adapted models after training, measured on the same folds (paired).

``site_adaptation_cv.py`` compares recipes, each trained anew; the choices here need no other
recipe, so one set of models per fold answers them all, and their differences are paired:

- **variants**: the adapted model as trained (``single``, its stored threshold), with
  test-time augmentation over the 8 flips and quarter turns (``+ D4``), the mean output of
  ``--seeds`` adaptations (``ensemble``), their mean weights (``soup``: one model), and the
  weights moved back toward the blended start (``WiSE a``: ``(1 - a) x adapted + a x start``,
  the post-hoc form of ``--init-blend``);
- **threshold rules** for the first seed's model: Youden on the inner validation files (what
  ``adapt`` stores), 0.5, Platt scaling on the validation files, Youden on the training and
  validation files together, the median of bootstrapped Youden thresholds.

Every variant but ``single`` takes its threshold by Youden on the fold's inner validation files.
``oracle`` is the best accuracy any threshold reaches on the held-out fold: the ranking's ceiling.

    .venv/bin/python studies/site_adaptation_posthoc.py --parent models/reference \\
        --data ../shared/data/xca-site-b --repeats 1 --out /tmp/posthoc.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from site_adaptation_cv import cv_folds, figures  # noqa: E402
from artery_edge.trainer.operating_point import choose_threshold  # noqa: E402
from artery_edge.trainer.scan import scan_dataset  # noqa: E402


def dihedral_views(images: np.ndarray) -> list[np.ndarray]:
    """The 8 flips and quarter turns of a (N, H, W, C) batch: a patch has no up."""
    views = []
    for turns in range(4):
        turned = np.rot90(images, turns, axes=(1, 2))
        views += [np.ascontiguousarray(turned), np.ascontiguousarray(turned[:, :, ::-1])]
    return views


def positive_scores(model, images: np.ndarray, tta: bool = False) -> np.ndarray:
    views = dihedral_views(images) if tta else [images]
    return np.mean([np.asarray(model(v, training=False))[:, 1] for v in views], axis=0)


def mixed(models: list, shares: list[float]):
    """A copy of ``models[0]`` whose base and head weights are the ``shares``-weighted mean of the models'."""
    import keras

    from artery_edge.trainer.parent import TRANSFERRED_LAYERS

    out = keras.models.clone_model(models[0])
    out.set_weights(models[0].get_weights())
    for name in TRANSFERRED_LAYERS:
        for i, variable in enumerate(out.get_layer(name).weights):
            variable.assign(sum(share * m.get_layer(name).weights[i].numpy() for m, share in zip(models, shares)))
    return out


def platt_threshold(labels: np.ndarray, scores: np.ndarray) -> float:
    """The p(positive) at which a logistic fit of the labels on logit(p) crosses 0.5."""
    from sklearn.linear_model import LogisticRegression

    logits = np.log(np.clip(scores, 1e-6, 1 - 1e-6) / np.clip(1 - scores, 1e-6, 1))
    fit = LogisticRegression().fit(logits[:, None], labels)
    slope, intercept = fit.coef_[0][0], fit.intercept_[0]
    return float(1 / (1 + np.exp(intercept / slope))) if slope > 0 else 0.5


def bagged_youden(labels: np.ndarray, scores: np.ndarray, draws: int = 200) -> float:
    """The median Youden threshold over bootstrap resamples of the validation files."""
    rng = np.random.default_rng(0)
    found = []
    for _ in range(draws):
        pick = rng.integers(0, len(labels), len(labels))
        if labels[pick].min() != labels[pick].max():
            found.append(choose_threshold(labels[pick], scores[pick], "youden"))
    return float(np.median(found))


THRESHOLD_RULES = {
    "Youden, validation (stored)": lambda tr, va: choose_threshold(va[0], va[1], "youden"),
    "0.5": lambda tr, va: 0.5,
    "Platt, validation": lambda tr, va: platt_threshold(*va),
    "Youden, train + validation": lambda tr, va: choose_threshold(np.r_[tr[0], va[0]], np.r_[tr[1], va[1]], "youden"),
    "bagged Youden, validation": lambda tr, va: bagged_youden(*va),
}


def oracle(labels: np.ndarray, scores: np.ndarray) -> float:
    return float(max(np.mean((scores >= t) == labels) for t in np.r_[scores, 1.1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parent", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--first-repeat", type=int, default=0)
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 43, 44], help="One adaptation per seed and fold.")
    parser.add_argument("--wise", type=float, nargs="+", default=[0.25, 0.5])
    parser.add_argument("--out", type=Path, default=None, help="Rows as JSON (rewritten after every fold).")
    args = parser.parse_args()

    from artery_edge.edge.imaging import load_image
    from artery_edge.trainer.adaptation import adaptation_config
    from artery_edge.trainer.model import build_model, serving_model
    from artery_edge.trainer.parent import copy_weights, load_parent
    from artery_edge.trainer.runs import load_keras_model, load_run, read_config
    from artery_edge.trainer.training import train

    start = time.perf_counter()
    parent = load_parent(args.parent)
    size = parent.run.image_size
    samples = scan_dataset(args.data).samples
    work = Path(tempfile.mkdtemp(prefix="site-posthoc-"))
    rows: list[dict] = []
    for repeat, index, test, split_file, subsets in cv_folds(samples, args.folds, range(
            args.first_repeat, args.first_repeat + args.repeats), work):
        parts = {"train": [s for s in samples if subsets.get(s.path) == "train"],
                 "validation": [s for s in samples if subsets.get(s.path) == "validation"], "test": test}
        images = {k: np.stack([load_image(s.path, size) for s in v]).astype(np.float32) for k, v in parts.items()}
        labels = {k: np.array([s.label for s in v]) for k, v in parts.items()}
        runs = [train(adaptation_config([str(args.data)], str(args.parent), size, split_pattern="",
                                        split_file=str(split_file), sample_grid_size=0,
                                        output_dir=str(work / "runs"), seed=seed), log=lambda m: None, verbose=0)
                for seed in args.seeds]
        raw = [load_keras_model(r.run_dir / "model.keras") for r in runs]
        temperatures = [load_run(r.run_dir).temperature for r in runs]
        served = [serving_model(m, t) for m, t in zip(raw, temperatures)]
        config = read_config(runs[0].run_dir)
        blended_start = build_model(len(parent.run.class_names), config)
        copy_weights(parent, blended_start, config.init_blend)
        where = {"repeat": repeat, "fold": index}

        def add(name: str, test_scores, validation_scores, threshold=None) -> None:
            if threshold is None:
                threshold = choose_threshold(labels["validation"], validation_scores, "youden")
            rows.append({"model": name, "kind": "variant", **where, "oracle": oracle(labels["test"], test_scores),
                         **figures(labels["test"], test_scores, threshold)})

        def scored(model, tta: bool = False) -> tuple[np.ndarray, np.ndarray]:
            return positive_scores(model, images["test"], tta), positive_scores(model, images["validation"], tta)

        first = {k: positive_scores(served[0], images[k]) for k in parts}
        add("single", first["test"], first["validation"], load_run(runs[0].run_dir).threshold)
        add("single + D4", *scored(served[0], tta=True))
        each = [(first["test"], first["validation"])] + [scored(m) for m in served[1:]]
        add(f"ensemble of {len(served)}", np.mean([t for t, _ in each], 0), np.mean([v for _, v in each], 0))
        soup = serving_model(mixed(raw, [1 / len(raw)] * len(raw)), float(np.mean(temperatures)))
        add(f"soup of {len(raw)}", *scored(soup))
        add(f"soup of {len(raw)} + D4", *scored(soup, tta=True))
        for share in args.wise:
            add(f"WiSE {share:g}", *scored(serving_model(mixed([raw[0], blended_start], [1 - share, share]),
                                                         temperatures[0])))
        add("blended start (no training)", *scored(serving_model(blended_start)))
        for rule, choose in THRESHOLD_RULES.items():
            threshold = choose((labels["train"], first["train"]), (labels["validation"], first["validation"]))
            rows.append({"model": rule, "kind": "threshold", **where, "oracle": oracle(labels["test"], first["test"]),
                         **figures(labels["test"], first["test"], threshold)})
        for run in runs:
            shutil.rmtree(run.run_dir, ignore_errors=True)
        if args.out:
            args.out.write_text(json.dumps({"parent": str(args.parent), "seeds": args.seeds, "rows": rows}))
        print(f"repeat {repeat} fold {index} ({time.perf_counter() - start:.0f} s so far)", file=sys.stderr, flush=True)

    print(f"{args.repeats} x {args.folds} folds of {args.data.name}, parent {args.parent.name}, seeds {args.seeds}; "
          f"Keras; mean over folds; {(time.perf_counter() - start) / 60:.1f} min")
    for kind in ("variant", "threshold"):
        print(f"\n| {kind} | ROC AUC | accuracy | oracle accuracy |\n|---|---|---|---|")
        for name in dict.fromkeys(r["model"] for r in rows if r["kind"] == kind):
            mine = [r for r in rows if r["model"] == name]
            print(f"| {name} | {np.mean([r['roc_auc'] for r in mine]):.3f} | "
                  f"{np.mean([r['accuracy'] for r in mine]):.3f} | {np.mean([r['oracle'] for r in mine]):.3f} |")


if __name__ == "__main__":
    main()
