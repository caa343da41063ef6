"""x86 vs arm64: the same models on the same files, every probability compared (platform/arm64_check.sh).

Rules (the parity bands the project already uses, tests/parity.py):
- float32: the same arithmetic on another instruction set, so every probability within 1e-5
  and no label changes.
- float16, dynamic, int8: a label may change only for an image whose x86 probability of the
  positive class lies within that precision's parity band of the decision threshold.
Any file missing or failed on either side is a mismatch too. Exit 0 when all agree, else 1.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from artery_edge.edge.classifier import Classifier  # noqa: E402
from artery_edge.edge.errors import ArteryEdgeError  # noqa: E402
from artery_edge.edge.precisions import PRECISIONS  # noqa: E402
from tests.parity import BOUNDS  # noqa: E402

FLOAT32_MAX_DIFF = 1e-5


@dataclass
class Agreement:
    """One precision on one arm64 root against x86."""

    dist: str
    precision: str
    images: int
    max_diff: float
    flips: int
    flips_outside_band: int
    band: float
    problems: list[str]

    @property
    def ok(self) -> bool:
        within = self.max_diff <= FLOAT32_MAX_DIFF and self.flips == 0 if self.precision == "float32" else True
        return within and self.flips_outside_band == 0 and not self.problems


def results_by_file(path: Path) -> tuple[dict[str, dict], dict]:
    """`infer --json` output: rows keyed by file, and the rest of the report (model, threshold)."""
    report = json.loads(path.read_text())
    return {row["file"]: row for row in report.pop("results")}, report


def probabilities(row: dict) -> dict[str, float]:
    return {key[2:]: float(value) for key, value in row.items() if key.startswith("p_") and value is not None}


def compare(dist: str, precision: str, x86: Path, arm: Path, work: Path = Path(".")) -> Agreement:
    """Every file of the x86 run against the arm64 run of the same model (``work``: the folder
    infer ran in, which relative model paths in its report start from)."""
    band = BOUNDS[precision].band
    try:
        ours, report = results_by_file(x86)
        theirs, _ = results_by_file(arm)
        positive = Classifier(work / report["model"]).positive_label  # the model's own rule, read on x86
    except (OSError, ValueError, KeyError, ArteryEdgeError) as exc:
        return Agreement(dist, precision, 0, float("nan"), 0, 0, band, [f"no results: {exc}"])
    problems = [f"{name}: missing on arm64" for name in ours if name not in theirs]
    problems += [f"{name}: {row['error']}" for name, row in {**ours, **theirs}.items() if row.get("error")]
    max_diff, flips, outside = 0.0, 0, 0
    for name, row in ours.items():
        other = theirs.get(name)
        if other is None or row.get("error") or other.get("error"):
            continue
        p, q = probabilities(row), probabilities(other)
        max_diff = max(max_diff, *(abs(p[k] - q.get(k, float("inf"))) for k in p))
        if row["label"] != other["label"]:
            flips += 1
            boundary = report["threshold"] if report.get("threshold") is not None else 0.5
            outside += abs(p[positive] - boundary) > band
    return Agreement(dist, precision, len(ours), max_diff, flips, outside, band, problems)


def read_times(path: Path) -> dict[str, dict[str, str]]:
    """times.tsv: dist <tab> key <tab> value, written by arm64_check.sh as it goes."""
    table: dict[str, dict[str, str]] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            dist, key, value = (line.split("\t") + ["", ""])[:3]
            table.setdefault(dist, {})[key] = value
    return table


def add_speed(times: dict[str, dict[str, str]], stage: Path, sides: list[str]) -> None:
    """The median invoke of the int8 run, per image (the whole run's wall time, process start
    included, is times.tsv's infer_int8_s: a cold start less the first one's byte-compiling)."""
    for side in sides:
        path = stage / ("x86" if side == "x86" else f"arm64-{side}") / "int8.json"
        t = times.setdefault(side, {})
        try:
            rows = [r for r in json.loads(path.read_text())["results"] if r.get("inference_ms") is not None]
        except (OSError, ValueError, KeyError):
            continue
        if rows:
            t["invoke_ms"] = f"{statistics.median(r['inference_ms'] for r in rows):.2f}"
            t["images"] = str(len(rows))


def environment_table(times: dict[str, dict[str, str]], dists: list[str]) -> list[str]:
    """Install, tests and timings per root (emulated), x86 alongside."""
    columns = ["x86", *dists]
    rows = [
        ("Python / LiteRT / NumPy / Pillow", "versions"),
        ("CPU (qemu model, emulated)", "cpu"),
        ("TensorFlow absent", "tf_absent"),
        ("debootstrap (s, cold only)", "root_s"),
        ("install edge extra (s)", "install_s"),
        ("tests: passed / skipped / failed", "tests"),
        ("tests wall (s)", "tests_s"),
        ("cold start, infer 1 image (s)", "cold_start_s"),
        ("invoke per image, median (ms)", "invoke_ms"),
        ("images in the int8 run", "images"),
        ("infer --json int8 on them, wall (s)", "infer_int8_s"),
    ]
    lines = ["| | " + " | ".join(c + ("" if c == "x86" else " arm64 (emulated)") for c in columns) + " |",
             "|---|" + "---|" * len(columns)]
    for title, key in rows:
        lines.append(f"| {title} | " + " | ".join(times.get(c, {}).get(key, "-") for c in columns) + " |")
    return lines


def agreement_table(rows: list[Agreement]) -> list[str]:
    lines = ["| precision | arm64 root | images | max abs dp vs x86 | label flips | flips outside the rule | ok |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        rule = f"none allowed, dp <= {FLOAT32_MAX_DIFF:g}" if r.precision == "float32" else f"band {r.band:g}"
        lines.append(f"| {r.precision} | {r.dist} | {r.images} | {r.max_diff:.2e} | {r.flips} | "
                     f"{r.flips_outside_band} ({rule}) | {'yes' if r.ok else 'NO'} |")
    return lines


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", type=Path, required=True, help="arm64_check.sh's stage folder")
    parser.add_argument("--dist", action="append", required=True)
    args = parser.parse_args(argv)
    times = read_times(args.stage / "times.tsv")
    add_speed(times, args.stage, ["x86", *args.dist])
    rows = [compare(dist, precision, args.stage / "x86" / f"{precision}.json",
                    args.stage / f"arm64-{dist}" / f"{precision}.json", args.stage / "work")
            for dist in args.dist for precision in PRECISIONS]
    print("\n".join(environment_table(times, args.dist)))
    print()
    print("\n".join(agreement_table(rows)))
    failures = [f"{r.dist} {r.precision}: {p}" for r in rows for p in r.problems[:3]]
    failures += [f"{r.dist} {r.precision}: max |dp| {r.max_diff:.2e}, {r.flips} flips "
                 f"({r.flips_outside_band} outside the band)" for r in rows if not r.ok and not r.problems]
    for dist in args.dist:
        t = times.get(dist, {})
        if t.get("tf_absent") != "yes":
            failures.append(f"{dist}: TensorFlow is importable after the edge install")
        if t.get("tests_rc") != "0":
            failures.append(f"{dist}: TF-free tests failed ({t.get('tests', 'not run')}; see {t.get('tests_log', '?')})")
    for line in failures:
        print(f"mismatch: {line}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
