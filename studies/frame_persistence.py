"""Does keeping a lesion only when it persists (seen in N of the last M frames) cut false lesions
on cine runs? Scans each run of a VOC folder (one sub-folder per run, frames in name order, as
``adsd-frames``) with a whole-frame .tflite once, then applies each rule to the lesion lists.

    python studies/frame_persistence.py --model WHOLE_FRAME.tflite --data ../shared/data/adsd-frames

Prints recall and false lesions per frame (centre rule, ``trainer.frame_metrics``) per rule; ``--json`` for the table.
"""

from __future__ import annotations

import argparse
import json
from itertools import groupby
from pathlib import Path

from artery_edge.edge.annotations import load_frames
from artery_edge.edge.scan_batch import Persistence
from artery_edge.edge.scanner import FrameScanner
from artery_edge.trainer.frame_metrics import count_lesions

RULES = ("1/1", "2/2", "2/3", "3/4", "3/5")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--threshold", type=float, default=None, help="default: the model's stored one")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    scanner = FrameScanner(args.model)
    frames = load_frames(args.data)
    runs = {group: list(members) for group, members in groupby(frames, key=lambda f: f.group)}
    scans = {group: [scanner.scan(frame.path, args.threshold).lesions for frame in members]
             for group, members in runs.items()}
    table = []
    for rule in RULES:
        found = truths = false = 0
        for group, members in runs.items():
            keep = Persistence.parse(rule).filter()
            for frame, lesions in zip(members, scans[group]):
                counts = count_lesions(keep(lesions), frame.lesions)
                found, truths, false = found + counts.found, truths + counts.truths, false + counts.false
        table.append({"rule": rule, "recall": round(found / max(1, truths), 4),
                      "false_per_frame": round(false / len(frames), 4)})
    if args.json:
        print(json.dumps({"model": str(args.model), "data": str(args.data), "runs": len(runs),
                          "frames": len(frames), "table": table}, indent=2))
        return
    print(f"{len(frames)} frames in {len(runs)} runs, threshold {args.threshold or scanner.threshold:.2f}")
    print(f"{'rule':<6}{'recall':>8}{'false/frame':>13}")
    for row in table:
        print(f"{row['rule']:<6}{row['recall']:>8.3f}{row['false_per_frame']:>13.3f}")


if __name__ == "__main__":
    main()
