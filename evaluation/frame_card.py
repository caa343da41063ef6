"""MODEL_CARD.md of a whole-frame run, from its run record and its evaluations (``evaluate``'s
``metrics.json`` on one or more frame sets): what it is, the data, the recipe, the figures with
their intervals, speed where measured, the files with their SHA-256, the limits. Nothing typed by hand.

    python -m artery_edge.evaluation.frame_card RUN [EVALUATION_FOLDER ...]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional, Sequence

from artery_edge.edge.metadata import sha256_of_file
from artery_edge.edge.text import markdown, markdown_code
from artery_edge.trainer.config import recipe
from artery_edge.trainer.runs import load_run

ARCADE_CITATION = ("Popov et al., \"Dataset for Automatic Region-based Coronary Artery Disease Diagnostics Using X-Ray "
                   "Angiography Images\", Scientific Data 11, 20 (2024); Zenodo record 10390295")


def interval(value: float, ci: Sequence[float]) -> str:
    return f"{value:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]"


def evaluation_section(report: dict) -> list[str]:
    runs = f" ({report['runs']} runs)" if report["bootstrap"]["over"] == "runs" else ""
    lines = [f"### {markdown(report['data'])}: {report['frames']} frames, {report['lesions']} lesions{runs}", "",
             f"Threshold {report['threshold']:.2f} (stored), 95 % intervals by bootstrap over "
             f"{report['bootstrap']['over']} ({report['bootstrap']['rounds']} rounds). Rule: {report['rule']}.", "",
             "| model | ARCADE F1 (per image) | lesions found | false lesions / frame | AP@0.5 |",
             "|---|---|---|---|---|"]
    for name, m in report["models"].items():
        lines.append(f"| {markdown(name)} | {interval(m['arcade_f1'], m['arcade_f1_ci'])} | "
                     f"{interval(m['recall'], m['recall_ci'])} | "
                     f"{interval(m['false_per_frame'], m['false_per_frame_ci'])} | {m['ap50']:.3f} |")
    for name, p in report.get("parity_with_keras", {}).items():
        lines.append(f"\n{markdown(name)} against Keras: map difference {p['mean_abs_map_diff']:.5f} on average, "
                     f"largest per frame median "
                     f"{p['max_abs_map_diff_median']:.4f} (worst {p['max_abs_map_diff_max']:.4f}); lesion lists "
                     f"agree on {p['lesion_lists_agree']:.1%} of frames.")
    return lines + [""]


def parent_rows(parent: Optional[dict]) -> list[str]:
    """A run continued from another (``--init-from``): which, at what size; its time is the parent's own."""
    if not parent:
        return []
    return [f"| started from | {markdown_code(str(parent.get('name')))} ({parent.get('image_size')} px, model.keras "
            f"sha256 {str(parent.get('model_sha256'))[:12]}...; its training time not counted below) |"]


def frame_model_card(run_dir: Path, evaluations: Sequence[Path]) -> str:
    run = load_run(run_dir)
    config = run.config
    record = run.about  # how it trained: frames, seconds
    lines = [
        f"# Model card: {markdown(run.run_dir.name)} (whole-frame stenosis map)", "",
        "## Model details",
        f"- MobileNetV2 (alpha {config.alpha:g}, ImageNet) encoder with a light U-Net decoder; input "
        f"{run.image_size} x {run.image_size} RGB (grey frames repeated), output a stenosis probability per pixel "
        "(docs/whole-frames.md).",
        f"- Lesions: connected regions of the map at or above {run.threshold:.2f} (rule {run.record.operating_point}, "
        f"chosen on validation), at least {run.decoding.get('min_area', 1)} map pixels; box in the frame's pixels, "
        "score = the region's peak probability.", "",
        "## Intended use",
        "- **Research tool, not a diagnostic device.** Not validated for clinical use; no decision about a patient "
        "may rest on it.",
        "- Intended: research on marking stenoses in whole X-ray coronary angiography frames on CPU-only devices.", "",
        "## Training data",
        f"- {markdown(', '.join(Path(d).name for d in config.data_dirs))}: {record['frames']['train']} training "
        f"frames, {record['frames']['val']} validation frames"
        + (f" (ARCADE's stenosis task, its published split; cite: {ARCADE_CITATION})."
           if any("arcade" in Path(d).name.lower() for d in config.data_dirs) else "."),
        f"- Targets: the experts' {config.target}s, drawn at the model's input size.", "",
        "## Training procedure",
        "| setting | value |", "|---|---|",
        *[f"| {key} | {markdown_code(str(value))} |" for key, value in recipe(config).items()],
        *parent_rows(run.parent),
        f"| training time | {record.get('seconds', 0) / 60:.0f} min on 2 CPU cores (docs/whole-frames.md) |", "",
        "## Evaluation", "",
    ]
    for folder in evaluations:
        lines += evaluation_section(json.loads((Path(folder) / "metrics.json").read_text()))
    lines += [
        "## Limitations",
        "- Validation frames chose the threshold and the recipe, and are reported too: the ARCADE figures are "
        "optimistic; ARCADE's own test split is not here.",
        "- Frames of other hospitals (other equipment, projections, contrast) score lower where measured; "
        "nothing was measured on patients without coronary disease.",
        "- A region is not a diagnosis: it marks where the model saw a narrowing, not its severity.", "",
        "## Files", "", "| file | sha256 |", "|---|---|",
        *[f"| {markdown_code(path.name)} | {markdown_code(sha256_of_file(path))} |"
          for path in sorted(run.run_dir.iterdir()) if path.suffix in (".keras", ".tflite") and path.is_file()],
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(frame_model_card(Path(sys.argv[1]), [Path(p) for p in sys.argv[2:]]))
