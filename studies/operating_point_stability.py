"""How stable is each operating-point rule? Thresholds chosen on bootstrap resamples of a
run's validation split, and what each does on its test split.

The stored threshold is chosen on one validation split (2,405 files in the P-ADSD recipe);
another draw of that split moves it, and with it test accuracy and specificity. This
resamples the validation split (with replacement, ``--rounds`` times), lets each rule pick
its threshold on every resample, and reports the spread of the thresholds and of the test
metrics they give, next to the rule's threshold on the whole split. Probabilities come from
the device model (``--model``, default the run's INT8 file, ``DEVICE_DEFAULT``) through ``edge.Classifier``,
so the figures are the device's.

    .venv/bin/python studies/operating_point_stability.py --run models/reference
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from artery_edge.edge.classifier import Classifier
from artery_edge.edge.precisions import DEVICE_DEFAULT
from artery_edge.trainer.operating_point import choose_threshold
from artery_edge.trainer.runs import load_run

RULES = ("youden", "accuracy", "sensitivity=0.9", "specificity=0.97", "specificity=0.975", "specificity=0.98")


def probabilities(classifier: Classifier, paths: list[Path]) -> np.ndarray:
    """p(positive) per file, in order."""
    return np.array([classifier.predict(p).positive_probability for p in paths])


def test_figures(threshold: float, truth: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    called = scores >= threshold
    return {"accuracy": float((called == truth).mean()), "sensitivity": float(called[truth].mean()),
            "specificity": float((~called[~truth]).mean())}


def stability(rule: str, val: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray],
              rounds: int, seed: int) -> dict:
    """The rule's threshold on the whole validation split, and the 5th-95th percentiles of
    thresholds and test figures over bootstrap resamples of it."""
    rng = np.random.default_rng(seed)
    full = choose_threshold(val[0], val[1], rule)
    draws = []
    for _ in range(rounds):
        index = rng.integers(0, len(val[0]), len(val[0]))
        threshold = choose_threshold(val[0][index], val[1][index], rule)
        draws.append({"threshold": threshold, **test_figures(threshold, *test)})

    def spread(key: str) -> list[float]:
        values = [d[key] for d in draws]
        return [round(float(np.percentile(values, 5)), 4), round(float(np.percentile(values, 95)), 4)]

    return {"rule": rule, "threshold": round(full, 4), "test": test_figures(full, *test),
            "p5_p95": {key: spread(key) for key in ("threshold", "accuracy", "sensitivity", "specificity")}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--model", type=Path, help="a .tflite of the run (default: its device model, INT8)")
    parser.add_argument("--data", type=Path, help="where the split's files are (default: where the run trained)")
    parser.add_argument("--rounds", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    run = load_run(args.run)
    classifier = Classifier(args.model or DEVICE_DEFAULT.file(args.run))
    positive = run.class_names.index(classifier.positive_label)
    samples = run.split(args.data)
    subsets = {}
    for name in ("validation", "test"):
        chosen = [s for s in samples if s.subset == name]
        subsets[name] = (np.array([s.label == positive for s in chosen]), probabilities(classifier, [s.path for s in chosen]))
    rows = [stability(rule, subsets["validation"], subsets["test"], args.rounds, args.seed) for rule in RULES]
    if args.json:
        print(json.dumps({"model": str(classifier.model_path), "rounds": args.rounds,
                          "validation": len(subsets["validation"][0]), "test": len(subsets["test"][0]),
                          "rules": rows}, indent=2))
        return
    print(f"{classifier.model_path}: validation {len(subsets['validation'][0])} files, test "
          f"{len(subsets['test'][0])} files, {args.rounds} bootstrap resamples of validation\n")
    print("| rule | threshold [5-95 %] | test accuracy [5-95 %] | sensitivity [5-95 %] | specificity [5-95 %] |")
    print("|---|---|---|---|---|")
    for r in rows:
        cells = [f"{r['threshold']:.3f} [{r['p5_p95']['threshold'][0]:.3f}, {r['p5_p95']['threshold'][1]:.3f}]"]
        cells += [f"{r['test'][k]:.3f} [{r['p5_p95'][k][0]:.3f}, {r['p5_p95'][k][1]:.3f}]"
                  for k in ("accuracy", "sensitivity", "specificity")]
        print(f"| {r['rule']} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
