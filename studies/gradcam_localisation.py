"""Does Grad-CAM point at the narrowing? On a synthetic set (whose generator wrote where each
narrowing is, `narrowings.csv`), the share of Unhealthy *test* images of a run whose mean heat
inside the narrowing's box exceeds the mean heat outside it.

    python studies/gradcam_localisation.py --run demo/models/RUN --data demo/data [--layer NAME] [--min 0.8]

Exits 1 when ``--min`` is given and the share is below it.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np
from PIL import Image


def localisation(run_dir: Path, data: Path, layer=None) -> tuple[float, int, str]:
    from artery_edge.trainer.explain import default_layer, explain
    from artery_edge.trainer.model import base_of
    from artery_edge.trainer.runs import load_run

    run = load_run(run_dir)
    with open(data / "narrowings.csv", newline="") as handle:
        boxes = {row["file"]: [float(row[k]) for k in ("x0", "y0", "x1", "y1")] for row in csv.DictReader(handle)}
    test = [s.path for s in run.split(data) if s.subset == "test" and s.path.relative_to(data).as_posix() in boxes]
    layer = layer or default_layer(base_of(run.keras_model()))
    wins = 0
    explanations, _ = explain(run, test, layer)
    for e in explanations:
        scale = run.image_size / Image.open(e.path).width
        x0, y0, x1, y1 = np.array(boxes[e.path.relative_to(data).as_posix()]) * scale
        inside = np.zeros(e.heat.shape, bool)
        inside[int(y0):int(np.ceil(y1)), int(x0):int(np.ceil(x1))] = True
        wins += e.heat[inside].mean() > e.heat[~inside].mean()
    return wins / max(len(explanations), 1), len(explanations), layer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True, help="the synthetic data folder (with narrowings.csv)")
    parser.add_argument("--layer", default=None)
    parser.add_argument("--min", type=float, default=None)
    args = parser.parse_args()
    share, n, layer = localisation(args.run, args.data, args.layer)
    print(f"Grad-CAM ({layer}): heat inside the narrowing's box > outside on {share:.1%} of {n} "
          f"Unhealthy test images")
    if args.min is not None and share < args.min:
        sys.exit(1)


if __name__ == "__main__":
    main()
