"""The parity suite's bounds (tests/parity.py) on any run's converted files and any image folder:
Keras (the run's temperature) against each ``model_<precision>.tflite`` beside it, end to end
from the same files, e.g. an adapted run on its new site's patches.

    .venv/bin/python studies/run_parity.py --run models/site-b --data ../shared/data/xca-site-b
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from artery_edge.edge.classifier import Classifier  # noqa: E402
from artery_edge.edge.precisions import PRECISIONS  # noqa: E402
from tests.parity import BOUNDS, check, measure  # noqa: E402
from artery_edge.trainer.predict import KerasPredictor  # noqa: E402
from artery_edge.trainer.scan import scan_dataset  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True, help="Class folders (the true class of each file).")
    args = parser.parse_args()
    samples = scan_dataset(args.data).samples
    files, labels = [s.path for s in samples], np.array([s.label for s in samples])
    keras_p = KerasPredictor.from_run(args.run).probabilities(files)
    failed = 0
    for name in PRECISIONS:
        path = PRECISIONS[name].file(args.run)
        if not path.is_file() or name not in BOUNDS:
            continue
        classifier = Classifier(path)
        tflite_p = np.array([[classifier.predict(f).probabilities[c] for c in classifier.labels] for f in files])
        found = measure(name, keras_p, tflite_p, labels)
        try:
            check(found, len(files), trained=True)
            verdict = "within bounds"
        except AssertionError:
            verdict, failed = "OUTSIDE the bounds", failed + 1
        print(f"{found.line()}: {verdict}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
