"""Which site patches the cross-validated models get wrong, and how often.

``site_adaptation_cv.py --out`` stores every held-out score; its folds are seeded by the
repeat, so each score maps back to its file. Over several repeats every patch is held out
once per repeat: a patch wrong in every repeat is one no training split taught the model,
whatever the fold. Prints how many patches are wrong how often (per class) and the patches
wrong in most repeats, and draws them beside patches never wrong (``--montage``), because
whether they share something (a vessel, a border, an exposure) is seen faster than read.

    .venv/bin/python studies/site_adaptation_errors.py --data ../shared/data/xca-site-b \\
        /tmp/cv-blend.json /tmp/cv-blend07.json --montage /tmp/errors.png
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from site_adaptation_cv import stratified_folds  # noqa: E402
from artery_edge.trainer.samples import DataError, Sample  # noqa: E402
from artery_edge.trainer.scan import scan_dataset  # noqa: E402


def cv_rows(cv_file: Path) -> list[dict]:
    """The rows of a ``site_adaptation_cv.py --out`` file, or one ``error:`` line."""
    try:
        rows = json.loads(cv_file.read_text())["rows"]
        if all(isinstance(r, dict) and {"repeat", "fold", "labels", "scores", "threshold"} <= r.keys() for r in rows):
            return rows
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise SystemExit(f"error: {cv_file}: not a site_adaptation_cv.py --out file ({exc})") from None
    raise SystemExit(f"error: {cv_file}: not a site_adaptation_cv.py --out file (rows without scores)")


def wrong_counts(samples: list[Sample], cv_files: list[Path], model: str, folds: int
                 ) -> tuple[collections.Counter, collections.Counter]:
    """(times held out, times wrong at the stored threshold) per sample path, over every
    repeat of ``model`` in the CV files."""
    seen: collections.Counter = collections.Counter()
    wrong: collections.Counter = collections.Counter()
    by_repeat: dict[int, list[list[Sample]]] = {}  # a repeat's folds, computed once for its k rows
    for cv_file in cv_files:
        for row in cv_rows(cv_file):
            if row.get("model") != model:
                continue
            if row["repeat"] not in by_repeat:
                by_repeat[row["repeat"]] = stratified_folds(samples, folds, seed=row["repeat"])
            test = by_repeat[row["repeat"]][row["fold"]]
            if [s.label for s in test] != row["labels"]:
                raise SystemExit(f"error: {cv_file}: repeat {row['repeat']} fold {row['fold']} does not match "
                                 f"the folds of {len(samples)} patches (another dataset or --folds?)")
            for sample, score in zip(test, row["scores"]):
                seen[sample.path] += 1
                wrong[sample.path] += (score >= row["threshold"]) != (sample.label == 1)
    return seen, wrong


def montage(rows: list[tuple[str, list[Path]]], out: Path, cell: int = 96) -> None:
    """One labelled row of patches per group, nearest-neighbour enlarged (pixels stay pixels)."""
    from PIL import Image, ImageDraw

    width = max(len(paths) for _, paths in rows)
    label_h = 14
    canvas = Image.new("L", (max(1, width) * cell, len(rows) * (2 * label_h + cell)), 255)
    draw = ImageDraw.Draw(canvas)
    for r, (title, paths) in enumerate(rows):
        y = r * (2 * label_h + cell)
        draw.text((2, y), title, fill=0)
        for c, path in enumerate(paths):
            with Image.open(path) as image:
                canvas.paste(image.convert("L").resize((cell, cell), Image.NEAREST), (c * cell, y + 2 * label_h))
            draw.text((c * cell + 2, y + label_h), path.stem[:14], fill=0)
    canvas.save(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("cv_files", type=Path, nargs="+", help="site_adaptation_cv.py --out files (same data, folds).")
    parser.add_argument("--data", type=Path, required=True, help="The site's class folders the CV ran on.")
    parser.add_argument("--model", default="adapted (int8)", help="Which model's rows (e.g. 'adapted (keras)').")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--show", type=int, default=7, help="Patches per montage row.")
    parser.add_argument("--montage", type=Path, default=None, help="Draw the hardest and some never-wrong patches.")
    args = parser.parse_args()

    try:
        dataset = scan_dataset(args.data)
    except DataError as exc:
        raise SystemExit(f"error: --data: {exc}") from None
    samples, names = dataset.samples, dataset.class_names
    seen, wrong = wrong_counts(samples, args.cv_files, args.model, args.folds)
    if not seen:
        raise SystemExit(f"error: no rows of model {args.model!r} in {', '.join(map(str, args.cv_files))}")
    repeats = max(seen.values())
    print(f"{args.model}: {len(seen)} patches, each held out {repeats} times "
          f"({', '.join(map(str, args.cv_files))})")
    print("\n| wrong in ... repeats | " + " | ".join(names) + " | all |\n|---|" + "---|" * (len(names) + 1))
    for k in range(repeats + 1):
        per_class = [sum(1 for s in samples if s.path in seen and s.label == c and wrong[s.path] == k)
                     for c in range(len(names))]
        print(f"| {k} | " + " | ".join(map(str, per_class)) + f" | {sum(per_class)} |")
    by_label = {s.path: s.label for s in samples}
    hardest = sorted((p for p in seen if 2 * wrong[p] > repeats), key=lambda p: (-wrong[p], str(p)))
    print(f"\nwrong in most repeats ({len(hardest)}): "
          + ", ".join(f"{names[by_label[p]]}/{p.name} {wrong[p]}/{seen[p]}" for p in hardest))
    if args.montage:
        rows = [(f"{name}: wrong in most repeats", [p for p in hardest if by_label[p] == c][:args.show])
                for c, name in enumerate(names)]
        rows += [(f"{name}: never wrong", sorted(p for p in seen if by_label[p] == c and not wrong[p])[:args.show])
                 for c, name in enumerate(names)]
        try:
            montage(rows, args.montage)
        except (OSError, ValueError) as exc:
            raise SystemExit(f"error: --montage {args.montage}: {exc}") from None
        print(f"montage: {args.montage}")


if __name__ == "__main__":
    main()
