"""x86 vs arm64: the same models on the same files, every probability compared (platform/arm64_check.sh).

Rules (the parity bands the project already uses, tests/parity.py):
- float32: the same arithmetic on another instruction set, so every probability within 1e-5
  and no label changes.
- float16, dynamic, int8: a label may change only for an image whose x86 probability of the
  positive class lies within that precision's parity band of the decision threshold.
Any file missing or failed on either side is a mismatch too.

The packaged whole-frame model (INT8, `scan --json` on the same frames), per frame:
- the same number of lesions;
- each box (lesions matched by position) within FRAME_BOX_MAP_PIXELS map pixels of x86's
  (a map pixel is frame side / map side frame pixels: 2 px on a 512 px ARCADE frame);
- each score, and the frame's peak, within FRAME_SCORE_STEPS steps of the output's quantization (1/256).
Why those: XNNPACK's INT8 kernels add exactly in int32 on every CPU; they differ only where
each op requantizes its accumulator to 8 bits (fp32 scale with round-half-even on x86 and ARMv8
NEON, fixed-point round-half-up "rndnu" in some aarch64 kernels), by at most one output step
per op at a tie. One step of the map moves a score by 1/256 and can flip a pixel at the
threshold, moving a box edge by one map pixel; the second step / pixel is for such a change
carried on through later layers. Exit 0 when all agree, else 1.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from artery_edge.edge.classifier import Classifier  # noqa: E402
from artery_edge.edge.errors import ArteryEdgeError  # noqa: E402
from artery_edge.edge.precisions import PRECISIONS  # noqa: E402
from artery_edge.edge.runtime import find_backend  # noqa: E402
from tests.parity import BOUNDS  # noqa: E402

FLOAT32_MAX_DIFF = 1e-5
FRAME_BOX_MAP_PIXELS = 2  # a box edge may move this many map pixels (module docstring)
FRAME_SCORE_STEPS = 2  # a score may move this many steps of the output's quantization
JSON_ROUNDING = 1e-4  # `scan --json` rounds scores to 4 decimals (boxes to 0.1 px)


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


@dataclass
class FrameAgreement:
    """The whole-frame model on one arm64 root against x86: worst differences and what broke the rules."""

    dist: str
    frames: int
    lesions: int  # on x86
    count_mismatches: int
    max_box_px: float  # largest box coordinate difference, frame pixels
    max_box_map_px: float  # the same in map pixels (what the rule bounds)
    max_score_diff: float  # lesion scores and each frame's peak
    score_tolerance: float
    problems: list[str]

    @property
    def ok(self) -> bool:
        return self.frames > 0 and not self.problems


def scan_rows(path: Path) -> tuple[dict[str, dict], dict]:
    """`scan --json` output: rows keyed by file (and frame, for cines), and the rest of the report."""
    report = json.loads(path.read_text())
    rows = report.pop("results")
    return {row["file"] + (f"#{row['frame']}" if row.get("frame") else ""): row for row in rows}, report


def model_grid(model: Path) -> tuple[int, float]:
    """The frame model's map side and its output step (quantization scale; 0 for a float output),
    read with the interpreter alone: how far apart a box or score may lie is counted in these."""
    _, interpreter_class = find_backend()
    output = interpreter_class(model_path=str(model)).get_output_details()[0]
    scale = float(output["quantization"][0]) if output["dtype"] != np.float32 else 0.0
    return int(output["shape"][1]), scale


def match_lesions(ours: list[dict], theirs: list[dict],
                  scale: tuple[float, float]) -> list[tuple[float, float, float]]:
    """Pairs x86 and arm64 lesions, closest boxes first (two equal scores may swap places in the
    best-first order): per pair, its box difference in frame pixels, in map pixels, and |d score|."""
    def apart(a: dict, b: dict) -> tuple[float, float]:
        d = [abs(u - v) for u, v in zip(a["box"], b["box"])]
        return max(d), max(d[0] / scale[0], d[2] / scale[0], d[1] / scale[1], d[3] / scale[1])
    pairs = sorted((apart(a, b)[1], i, j) for i, a in enumerate(ours) for j, b in enumerate(theirs))
    used_ours: set[int] = set()
    used_theirs: set[int] = set()
    matched = []
    for _, i, j in pairs:
        if i not in used_ours and j not in used_theirs:
            used_ours.add(i)
            used_theirs.add(j)
            px, map_px = apart(ours[i], theirs[j])
            matched.append((px, map_px, abs(float(ours[i]["score"]) - float(theirs[j]["score"]))))
    return matched


def frame_problems(name: str, row: dict, other: dict, map_side: int, tolerance: float) -> tuple[list[str], list]:
    """One frame's rule breaks (count, box, score, peak) and its matched lesion pairs, the peak's
    difference as one more pair (no box): a frame without lesions still compares a probability."""
    if len(row["lesions"]) != len(other["lesions"]):
        return [f"{name}: {len(row['lesions'])} lesions on x86, {len(other['lesions'])} on arm64"], []
    width, height = row["frame_size"]
    scale = (width / map_side, height / map_side)
    pairs = match_lesions(row["lesions"], other["lesions"], scale)
    problems = [f"{name}: a box {map_px:.1f} map pixels ({px:.1f} px) from x86's"
                for px, map_px, _ in pairs if map_px > FRAME_BOX_MAP_PIXELS + 0.1 / min(scale)]
    problems += [f"{name}: a score {diff:.4f} from x86's" for _, _, diff in pairs if diff > tolerance]
    peak = abs(float(row["peak"]) - float(other["peak"]))  # the map's highest value: lesion or not
    problems += [f"{name}: the peak {peak:.4f} from x86's"] if peak > tolerance else []
    return problems, pairs + [(0.0, 0.0, peak)]


def compare_frames(dist: str, x86: Path, arm: Path, grid: Optional[tuple[int, float]] = None,
                   work: Path = Path(".")) -> FrameAgreement:
    """Every frame of the x86 scan against the arm64 scan (``grid``: map side and output step,
    default read from the x86 report's model, relative paths starting from ``work``)."""
    try:
        ours, report = scan_rows(x86)
        theirs, _ = scan_rows(arm)
        map_side, step = grid or model_grid(work / report["model"])
    except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
        return FrameAgreement(dist, 0, 0, 0, float("nan"), float("nan"), float("nan"), float("nan"),
                              [f"no results: {exc}"])
    tolerance = FRAME_SCORE_STEPS * step + JSON_ROUNDING
    problems = [f"{name}: missing on arm64" for name in ours if name not in theirs]
    problems += [f"{name}: {row['error']}" for name, row in {**ours, **theirs}.items() if row.get("error")]
    pairs, counts = [], 0
    for name, row in ours.items():
        other = theirs.get(name)
        if other is None or row.get("error") or other.get("error"):
            continue
        found, matched = frame_problems(name, row, other, map_side, tolerance)
        counts += len(row["lesions"]) != len(other["lesions"])
        problems += found
        pairs += matched
    worst = [max((p[k] for p in pairs), default=0.0) for k in range(3)]
    lesions = sum(len(row["lesions"]) for row in ours.values())
    return FrameAgreement(dist, len(ours), lesions, counts, *worst, tolerance, problems)


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


def add_frame_speed(times: dict[str, dict[str, str]], stage: Path, sides: list[str]) -> None:
    """The whole-frame model's time per frame: medians of the scan (invoke; whole path from the
    file's decoding to its lesions) and `benchmark --frame`'s figures (model alone, path, load)."""
    for side in sides:
        folder = stage / ("x86" if side == "x86" else f"arm64-{side}")
        t = times.setdefault(side, {})
        try:
            rows = [r for r in json.loads((folder / "frames.json").read_text())["results"] if not r.get("error")]
        except (OSError, ValueError, KeyError):
            rows = []
        if rows:
            t["frames"] = str(len(rows))
            t["scan_invoke_ms"] = f"{statistics.median(r['inference_ms'] for r in rows):.1f}"
            t["scan_total_ms"] = f"{statistics.median(r['total_ms'] for r in rows):.1f}"
        try:
            bench = json.loads((folder / "frame_bench.json").read_text())[0]
            t["bench"] = f"{bench['p50_ms']:.1f} / {bench['pipeline_p50_ms']:.1f} / {bench['load_ms']:.0f}"
        except (OSError, ValueError, KeyError, IndexError, TypeError):
            continue


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
        ("frame model: frames scanned", "frames"),
        ("scan: invoke per frame, median (ms)", "scan_invoke_ms"),
        ("scan: whole path per frame, median (ms)", "scan_total_ms"),
        ("scan --json on them, wall (s)", "scan_s"),
        ("benchmark --frame p50: model / path (ms), load (ms)", "bench"),
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


def frame_table(rows: list[FrameAgreement]) -> list[str]:
    """The worst differences beside the rule they are held to, so a pass shows its margin."""
    lines = ["| whole-frame model (int8) | arm64 root | frames | lesions on x86 | lesion count mismatches | "
             "max box diff, px (map px) | max score / peak diff | rule | ok |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        rule = (f"same count, box <= {FRAME_BOX_MAP_PIXELS} map px, score <= {r.score_tolerance:.4f}"
                f" ({FRAME_SCORE_STEPS} output steps)")
        lines.append(f"| packaged | {r.dist} | {r.frames} | {r.lesions} | {r.count_mismatches} | "
                     f"{r.max_box_px:.1f} ({r.max_box_map_px:.1f}) | {r.max_score_diff:.4f} | {rule} | "
                     f"{'yes' if r.ok else 'NO'} |")
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
    add_frame_speed(times, args.stage, ["x86", *args.dist])
    frame_rows = [compare_frames(dist, args.stage / "x86" / "frames.json",
                                 args.stage / f"arm64-{dist}" / "frames.json", work=args.stage / "work")
                  for dist in args.dist]
    print("\n".join(environment_table(times, args.dist)))
    print()
    print("\n".join(agreement_table(rows)))
    print()
    print("\n".join(frame_table(frame_rows)))
    failures = [f"{r.dist} {r.precision}: {p}" for r in rows for p in r.problems[:3]]
    failures += [f"{r.dist} whole-frame model: {p}" for r in frame_rows for p in r.problems[:5]]
    failures += [f"{r.dist} whole-frame model: no frames compared"
                 for r in frame_rows if not r.frames and not r.problems]
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
