"""What adapting to a new site costs the original one: the parent and its adapted runs on the
parent's own test split (for the P-ADSD recipe: P-ADSD's published ``validation-*`` files).

ROC AUC is the figure that compares (it needs no threshold); accuracy, sensitivity and
specificity are each model's own, at its stored threshold, which for an adapted run was
chosen on the new site and so is not tuned for the original one.

    .venv/bin/python studies/site_adaptation_forgetting.py --parent models/reference \\
        --adapted models/site-b models/site-b-replay
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from artery_edge.trainer.metrics import binary_metrics  # noqa: E402
from artery_edge.trainer.samples import subset  # noqa: E402
from artery_edge.trainer.scan import readable  # noqa: E402


def scores_of(run_dir: Path, files: list[Path], batch_size: int = 64) -> tuple[np.ndarray, float]:
    """p(positive) per file with the run's temperature, and its stored threshold."""
    from artery_edge.trainer.predict import KerasPredictor

    predictor = KerasPredictor.from_run(run_dir)
    scores = predictor.probabilities(files, batch_size)[:, 1]
    return scores, predictor.threshold if predictor.threshold is not None else 0.5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parent", type=Path, required=True)
    parser.add_argument("--adapted", type=Path, nargs="+", required=True)
    parser.add_argument("--limit", type=int, default=0, help="A seeded random sample of this many files (0: all).")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    from artery_edge.trainer.runs import load_run

    start = time.perf_counter()
    parent = load_run(args.parent)
    samples, skipped = readable(subset(parent.split(), "test"))
    if args.limit and args.limit < len(samples):
        samples = [samples[i] for i in sorted(np.random.default_rng(0).permutation(len(samples))[: args.limit])]
    files, labels = [s.path for s in samples], np.array([s.label for s in samples])
    rows = []
    for run_dir in [args.parent, *args.adapted]:
        t = time.perf_counter()
        scores, threshold = scores_of(run_dir, files)
        found = binary_metrics(labels, scores, (scores >= threshold).astype(int), positive=1)
        rows.append({"run": str(run_dir), "threshold": threshold, "seconds": time.perf_counter() - t,
                     **{k: found[k] for k in ("roc_auc", "accuracy", "sensitivity", "specificity")}})
    base = rows[0]["roc_auc"]
    print(f"{parent.run_dir.name}'s test split ({len(files)} files, {len(skipped)} unreadable skipped); "
          f"{(time.perf_counter() - start) / 60:.1f} min")
    print("| run | ROC AUC | change | accuracy | sensitivity | specificity | threshold |\n|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {Path(row['run']).name} | {row['roc_auc']:.4f} | {row['roc_auc'] - base:+.4f} | {row['accuracy']:.3f} "
              f"| {row['sensitivity']:.3f} | {row['specificity']:.3f} | {row['threshold']:.3f} |")
    if args.out:
        args.out.write_text(json.dumps({"n": len(files), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
