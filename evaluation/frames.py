"""``evaluate`` on a whole-frame run: Keras and every TFLite variant side by side on the same frames.

Per model: ARCADE's per-image F1 (``trainer.frame_metrics``), lesion recall and false lesions
per frame at the stored threshold (centre rule), AP at IoU 0.5, the FROC curve over thresholds;
95 % intervals by bootstrap over frames, or over runs when the frames come in runs (a VOC
folder per cine sequence, as ADSD's). Parity with Keras: the largest map difference per frame
and how often the lesion lists agree (same count, each lesion matched at IoU >= 0.5).
The frames enter every model through the same decode and resize (``edge.imaging``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from artery_edge.edge.annotations import Frame, load_frames
from artery_edge.edge.imaging import load_image
from artery_edge.edge.lesions import FoundLesion
from artery_edge.edge.precisions import model_files
from artery_edge.trainer.frame_metrics import FrameScores, average_precision, iou, score_maps, truth_outlines
from artery_edge.trainer.runs import TrainedRun, load_run

FROC_THRESHOLDS = tuple(round(t, 2) for t in np.arange(0.05, 0.96, 0.05))


def bootstrap_interval(statistic: Callable[[np.ndarray], float], groups: np.ndarray, rounds: int,
                       seed: int = 0) -> list[float]:
    """95 % percentile interval of ``statistic(frame indices)`` resampling whole groups."""
    names = np.unique(groups)
    members = [np.flatnonzero(groups == name) for name in names]
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(rounds):
        chosen = rng.integers(0, len(names), len(names))
        values.append(statistic(np.concatenate([members[c] for c in chosen])))
    values = np.array([v for v in values if math.isfinite(v)])
    return [round(float(np.percentile(values, 2.5)), 4), round(float(np.percentile(values, 97.5)), 4)] \
        if len(values) else [math.nan, math.nan]


def summary(scores: FrameScores, groups: np.ndarray, rounds: int, truths_per_frame: list) -> dict:
    def f1(idx):
        return float(np.nanmean(scores.f1[idx])) if np.isfinite(scores.f1[idx]).any() else math.nan

    def recall(idx):
        return float(scores.found[idx].sum() / scores.truths[idx].sum()) if scores.truths[idx].sum() else math.nan

    def false(idx):
        return float(scores.false[idx].mean())

    every = np.arange(len(groups))
    return {
        "arcade_f1": round(f1(every), 4), "arcade_f1_ci": bootstrap_interval(f1, groups, rounds),
        "recall": round(recall(every), 4), "recall_ci": bootstrap_interval(recall, groups, rounds),
        "false_per_frame": round(false(every), 4), "false_per_frame_ci": bootstrap_interval(false, groups, rounds),
        "ap50": round(average_precision(list(zip(scores.marks, truths_per_frame))), 4),
    }


def lists_agree(a: Sequence[FoundLesion], b: Sequence[FoundLesion]) -> bool:
    """Same number of lesions, each of ``a`` matched by one of ``b`` at IoU >= 0.5."""
    return len(a) == len(b) and all(any(iou(x.box, y.box) >= 0.5 for y in b) for x in a)


def keras_maps(run: TrainedRun, frames: Sequence[Frame]) -> list[np.ndarray]:
    from artery_edge.trainer.frame_training import predict_maps

    images = np.stack([load_image(frame.path, run.image_size) for frame in frames])
    return list(predict_maps(run.keras_model(), images))


def tflite_maps(path: Path, frames: Sequence[Frame]) -> list[np.ndarray]:
    from artery_edge.edge.scanner import FrameScanner

    scanner = FrameScanner(path)
    return [scanner.scan(frame.path).probability_map for frame in frames]


def evaluation_frames(run: TrainedRun, data: Optional[Path]) -> tuple[list[Frame], str]:
    """The frames to score: ``data`` (COCO or VOC folder), else the run's validation split."""
    if data is not None:
        return load_frames(data), str(data)
    from artery_edge.trainer.frame_training import split_frames

    split = split_frames(run.config)
    return (split.test, "test split") if split.test else (split.val, "validation split")


def evaluate_frames(run_dir: Path, data: Optional[Path] = None, models: Optional[Sequence[Path]] = None,
                    threshold: Optional[float] = None, rounds: int = 1000,
                    log: Callable[[str], None] = lambda _: None) -> dict:
    """The report (a JSON-ready dict): per model its figures, the FROC curve and its parity with Keras."""
    run = load_run(run_dir)
    frames, source = evaluation_frames(run, data)
    at = run.threshold if threshold is None else threshold
    area = int(run.decoding.get("min_area", 1))
    groups = np.array([frame.group or str(frame.path) for frame in frames])
    truths = [frame.lesions for frame in frames]
    maps = {"keras": keras_maps(run, frames)}
    for path in models if models is not None else model_files(run.run_dir):
        log(f"scanning {len(frames)} frames with {Path(path).name}")
        maps[Path(path).stem.replace("model_", "")] = tflite_maps(Path(path), frames)
    report = {"run": str(run.run_dir), "data": source, "frames": len(frames), "runs": len(set(groups)),
              "lesions": int(sum(len(t) for t in truths)), "threshold": at, "min_area": area,
              "rule": "found: a mark's box contains the lesion's centre; false: a mark containing no centre",
              "bootstrap": {"rounds": rounds, "over": "runs" if len(set(groups)) < len(frames) else "frames"},
              "models": {}, "froc": {}, "parity_with_keras": {}}
    scored, outlines = {}, truth_outlines(frames)
    for name, model_maps in maps.items():
        scored[name] = score_maps(model_maps, frames, at, area, outlines=outlines)
        report["models"][name] = summary(scored[name], groups, rounds, truths)
        report["froc"][name] = [
            {"threshold": t, "recall": float(s.found.sum() / max(1, s.truths.sum())),
             "false_per_frame": float(s.false.mean())}
            for t in FROC_THRESHOLDS for s in [score_maps(model_maps, frames, t, area, with_f1=False)]]
    for name in maps:
        if name == "keras":
            continue
        differences = [float(np.abs(a - b).max()) for a, b in zip(maps[name], maps["keras"])]
        agree = [lists_agree(a, b) for a, b in zip(scored[name].marks, scored["keras"].marks)]
        report["parity_with_keras"][name] = {
            "mean_abs_map_diff": round(float(np.mean([np.abs(a - b).mean() for a, b in zip(maps[name], maps["keras"])])), 5),
            "max_abs_map_diff_median": round(float(np.median(differences)), 4),
            "max_abs_map_diff_max": round(float(np.max(differences)), 4),
            "lesion_lists_agree": round(float(np.mean(agree)), 4)}
    return report


def plot_froc(report: dict, path: Path) -> None:
    from artery_edge.trainer.plots import save_figure
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4))
    for name, curve in report["froc"].items():
        ax.plot([p["false_per_frame"] for p in curve], [p["recall"] for p in curve], marker=".", label=name)
    ax.set_xlabel("false lesions per frame")
    ax.set_ylabel("lesions found (centre rule)")
    ax.set_title(f"FROC: {report['data']} ({report['frames']} frames)")
    ax.grid(alpha=0.3)
    ax.legend()
    save_figure(fig, path)


def report_lines(report: dict) -> list[str]:
    """The side-by-side table a person reads (the JSON has everything)."""
    lines = [f"{report['frames']} frames ({report['data']}), {report['lesions']} lesions, threshold "
             f"{report['threshold']:.2f}, 95 % CI by bootstrap over {report['bootstrap']['over']}",
             f"{'model':<10}{'ARCADE F1':>22}{'recall':>22}{'false/frame':>22}{'AP50':>8}"]
    for name, m in report["models"].items():
        cells = [f"{m[k]:.3f} [{m[k + '_ci'][0]:.3f}, {m[k + '_ci'][1]:.3f}]" for k in
                 ("arcade_f1", "recall", "false_per_frame")]
        lines.append(f"{name:<10}{cells[0]:>22}{cells[1]:>22}{cells[2]:>22}{m['ap50']:>8.3f}")
    for name, p in report["parity_with_keras"].items():
        lines.append(f"{name}: map |dp| mean {p['mean_abs_map_diff']:.5f}, max per frame median "
                     f"{p['max_abs_map_diff_median']:.4f} (worst "
                     f"{p['max_abs_map_diff_max']:.4f}); lesion lists agree on {p['lesion_lists_agree']:.1%} of frames")
    return lines


def write_frame_evaluation(report: dict, out: Optional[Path], run_dir: Path, data_name: str) -> Path:
    """``metrics.json``, ``report.md`` and ``froc.png`` in a new folder (never overwritten)."""
    import json

    from artery_edge.edge.atomic import new_folder

    def fill(folder: Path) -> None:
        (folder / "metrics.json").write_text(json.dumps(report, indent=2))
        (folder / "report.md").write_text("# Whole-frame evaluation\n\n```\n" + "\n".join(report_lines(report))
                                          + "\n```\n")
        plot_froc(report, folder / "froc.png")

    folder, _ = new_folder(out or Path(run_dir) / f"evaluation-{data_name}", fill)
    return folder


def is_frame_run(run_dir: Path) -> bool:
    return load_run(run_dir).task == "map"


def run_frame_evaluation(run_dir: Path, options, out: Optional[Path], quiet: bool = False) -> tuple[Path, list[str], dict]:
    """``evaluate`` for a whole-frame run with its options (``EvaluateOptions``): the folder written,
    the lines to print and the report."""
    from artery_edge.edge.errors import OptionError

    if options.target_sensitivity is not None or options.prevalence is not None:
        raise OptionError("--target-sensitivity and --prevalence apply to patch classifiers, not whole-frame runs")
    log = (lambda _: None) if quiet else (lambda line: print(line, file=__import__("sys").stderr, flush=True))
    report = evaluate_frames(run_dir, options.data_dir, options.models, options.threshold,
                             options.bootstrap_rounds, log)
    name = Path(options.data_dir).name if options.data_dir else "frames"
    folder = write_frame_evaluation(report, out, run_dir, name)
    return folder, report_lines(report), report
