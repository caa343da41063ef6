"""The recommended recipe over seeds: each run's stored threshold and its Keras / INT8 figures
on its evaluated files, the spread of the thresholds, and what an ensemble of the runs (mean
logit) would rank. Reads each run's ``evaluation/metrics.json`` and ``probabilities.npz``
(``artery-edge evaluate --run RUN``); the runs must have been evaluated on the same files.

    .venv/bin/python studies/seed_table.py models/reference models/padsd-e5-128-ft14-spec97-seed7 ...
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def main(runs: list[Path]) -> None:
    print("| run | seed | threshold | Keras AUC | INT8 AUC [95% CI] | accuracy | sensitivity | specificity |")
    print("|---|---|---|---|---|---|---|---|")
    for run in runs:
        metrics = json.loads((run / "evaluation" / "metrics.json").read_text())
        seed = json.loads((run / "config.json").read_text()).get("seed")
        keras, int8 = metrics["models"]["keras"]["metrics"], metrics["models"]["int8"]
        low, high = int8["ci95"]["roc_auc"]
        m = int8["metrics"]
        print(f"| {run.name} | {seed} | {int8['threshold']:.3f} | {keras['roc_auc']:.4f} | {m['roc_auc']:.4f} "
              f"[{low:.3f}, {high:.3f}] | {m['accuracy']:.4f} | {m['sensitivity']:.4f} | {m['specificity']:.4f} |")
    probabilities = [np.load(run / "evaluation" / "probabilities.npz") for run in runs]
    truth = probabilities[0]["labels"]
    if not all((p["files"] == probabilities[0]["files"]).all() for p in probabilities):
        sys.exit("the runs were evaluated on different files")
    thresholds = [json.loads((run / "run.json").read_text())["threshold"] for run in runs]
    print(f"\nthresholds: {', '.join(f'{t:.3f}' for t in thresholds)}; spread {max(thresholds) - min(thresholds):.3f}")
    for kind in ("keras", "int8"):
        scores = np.mean([logit(p[kind][:, 1]) for p in probabilities], axis=0)
        healthy = np.sort(scores[truth == 0])
        at_97 = healthy[int(np.ceil(0.97 * len(healthy))) - 1]
        print(f"ensemble of {len(runs)} ({kind}, mean logit): AUC {roc_auc_score(truth, scores):.4f}; sensitivity at "
              f"specificity 0.97 (threshold chosen on these files: an upper bound) {np.mean(scores[truth == 1] > at_97):.3f}")


if __name__ == "__main__":
    main([Path(a) for a in sys.argv[1:]])
