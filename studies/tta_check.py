"""Would test-time augmentation pay on the device? The device model on the run's test split,
alone vs averaged over flips (horizontal, vertical, both): ROC AUC, accuracy at the stored
threshold, and the latency it costs (invokes per image).

    .venv/bin/python studies/tta_check.py --run models/padsd-e2-128-cosine
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from artery_edge.edge.classifier import Classifier
from artery_edge.edge.decision import positive_index
from artery_edge.edge.precisions import DEVICE_DEFAULT
from artery_edge.trainer.metrics import roc_auc
from artery_edge.trainer.runs import load_run
from artery_edge.trainer.samples import subset
from artery_edge.trainer.scan import readable

VIEWS = {"none": [lambda x: x],
         "h-flip": [lambda x: x, lambda x: x[:, ::-1]],
         "h+v+hv flips": [lambda x: x, lambda x: x[:, ::-1], lambda x: x[::-1], lambda x: x[::-1, ::-1]]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    run = load_run(args.run)
    samples, _ = readable(subset(run.split(), "test"))
    positive = positive_index(run.class_names)
    truth = np.array([s.label == positive for s in samples])
    classifier = Classifier(DEVICE_DEFAULT.file(args.run), threads=2)
    threshold = classifier.threshold if classifier.threshold is not None else 0.5
    pixels = [classifier.preprocess(s.path) for s in samples]
    rows = []
    for name, views in VIEWS.items():
        start = time.perf_counter()
        p = np.array([np.mean([classifier.invoke(classifier.input_tensor(np.ascontiguousarray(v(x))))[positive]
                               for v in views]) for x in pixels])
        ms = (time.perf_counter() - start) * 1000 / len(samples)
        predicted = p >= threshold
        rows.append({"tta": name, "invokes": len(views), "roc_auc": roc_auc(truth, p),
                     "accuracy": float((predicted == truth).mean()), "sensitivity": float(predicted[truth].mean()),
                     "specificity": float((~predicted[~truth]).mean()), "ms_per_image": round(ms, 3)})
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"{len(samples)} test images, {DEVICE_DEFAULT.file_name}, threshold {threshold:.4f}\n")
    print("| test-time augmentation | invokes | ROC AUC | accuracy | sensitivity | specificity | ms / image |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['tta']} | {r['invokes']} | {r['roc_auc']:.4f} | {r['accuracy']:.4f} | {r['sensitivity']:.4f} | "
              f"{r['specificity']:.4f} | {r['ms_per_image']:.2f} |")


if __name__ == "__main__":
    main()
