"""MODEL_CARD.md for a run, laid out after the Hugging Face model card (model details, intended
use, training data, training procedure, evaluation, limitations) with the MONAI bundle's
emphasis on files and checksums. Written by ``evaluate`` from what the run and the evaluation
measured: nothing in it is typed by hand. Every text that came from files (class and folder
names, file names, paths, patterns) goes through ``edge.text``'s Markdown escapers."""

from __future__ import annotations

import csv
import platform
from collections import Counter
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Sequence

from artery_edge.edge.metadata import sha256_of_file
from artery_edge.edge.text import markdown, markdown_code
from artery_edge.evaluation.formatting import cell, decision_text, number, threshold_text
from artery_edge.trainer.config import recipe

METRICS = ("accuracy", "sensitivity", "specificity", "ppv", "npv", "roc_auc")

def split_counts(run) -> tuple[dict, str]:
    """Images per (subset, class) from the run's split manifest, and how the split was made."""
    with open(run.run_dir / "split.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    counts = Counter((row["subset"], row["class"]) for row in rows)
    config = run.config
    if config.split_pattern:
        how = (f"published split kept by file name ({markdown_code(config.split_pattern)}); the other files split "
               f"stratified at random, seeded ({config.seed})")
    elif config.split_file:
        how = f"predefined split file {markdown_code(Path(config.split_file).name)}"
    elif config.group_pattern:
        groups = len({row.get("group") for row in rows})
        how = (f"grouped by the first capture group of {markdown_code(config.group_pattern)} on the file name "
               f"({groups} groups, none in two subsets), seeded ({config.seed})")
    else:
        how = (f"stratified random split of single files, seeded ({config.seed}): patches of one "
               "patient or recording may sit in more than one subset")
    return dict(counts), how


INTENDED_USE = [
    "## Intended use",
    "- **Research tool, not a diagnostic device.** Not validated for clinical use; no decision about a "
    "patient may rest on it.",
    "- Intended: research on patch-level stenosis classification in X-ray coronary angiography, and on "
    "running such models on edge devices.",
    "- Out of scope: whole-frame or whole-study diagnosis, other imaging modalities, other populations or "
    "sites without new validation.",
]
LIMITATIONS = [
    "## Limitations",
    "- Patch-level classifier: it sees small crops, not whole angiograms, and says nothing about where "
    "in a study a stenosis is.",
    "- Measured on one data source (one site, one kind of equipment); performance at other sites is "
    "unknown and, where it was measured, lower.",
    "- Every patch, Healthy included, comes from patients with coronary artery disease; the model has not "
    "seen a population without it.",
    "- A random split of single files can put patches of one patient on both sides; only a grouped or "
    "predefined split guards against that.",
    "- Figures are from one run and one split; the spread over seeds is not in this card.",
]


def write_model_card(path: Path, report: dict, run, model_files: Sequence[Path]) -> None:
    """MODEL_CARD.md from the run and its evaluation report (``evaluate``'s metrics.json)."""
    sections = [model_details(report, run), INTENDED_USE, training_sections(run), evaluation_section(report),
                LIMITATIONS, files_section(report, run, model_files)]
    path.write_text("\n\n".join("\n".join(section) for section in sections) + "\n", encoding="utf-8")


def keras_version() -> str:
    try:
        return version("keras")
    except PackageNotFoundError:
        return "?"


def model_details(report: dict, run) -> list[str]:
    config = run.config
    positive = markdown(report["positive_class"])
    return [
        f"# Model card: {markdown(run.run_dir.name)}",
        "",
        "## Model details",
        f"- MobileNetV2 (alpha {config.alpha}) transfer-learned in two stages (frozen base, then "
        f"fine-tuning), {run.image_size} x {run.image_size} RGB input, raw pixels 0..255 (normalised in the graph).",
        f"- Classes: {', '.join(markdown(c) for c in run.class_names)}; positive class **{positive}**.",
        f"- Calibration temperature {report['calibration']['temperature']:.4f} (fitted on the validation split, "
        "inside every exported graph).",
        (f"- Stored operating point: {markdown(config.operating_point)}, threshold {run.threshold:.4f} on "
         f"p({positive}) chosen on the validation split and stored in every exported file."
         if run.threshold is not None else "- Stored operating point: argmax (no threshold stored)."),
        *([f"- Adapted from run {markdown_code(run.parent.get('name'))} (trained on "
           f"{markdown(run.parent.get('data') or '?')}; its `model.keras` sha256 "
           f"{markdown_code(run.parent['model_sha256'])}): fine-tuned on the data below, temperature and "
           "threshold re-fitted on its validation split."] if run.parent else []),
        *([f"- Distilled from {len(config.teachers)} run(s) "
           f"({', '.join(markdown_code(Path(t).name) for t in config.teachers)}): each training target was "
           f"{1 - config.teacher_weight:g} x the label + {config.teacher_weight:g} x their ensemble's probabilities "
           "(`run.json` has each teacher's `model.keras` sha256)."] if config.teachers else []),
        f"- Built with artery-edge, Keras {keras_version()}, Python {platform.python_version()}.",
    ]


def training_sections(run) -> list[str]:
    counts, how = split_counts(run)
    config = run.config
    return [
        "## Training data",
        f"- Data folder(s): {', '.join(markdown_code(Path(d).name) for d in config.data_dirs)}."
        f" Split: {how}.",
        "",
        "| subset | " + " | ".join(markdown(c) for c in run.class_names) + " |",
        "|---|" + "---|" * len(run.class_names),
        *[f"| {subset} | " + " | ".join(str(counts.get((subset, c), 0)) for c in run.class_names) + " |"
          for subset in ("train", "validation", "test")],
        "",
        "## Training procedure",
        "",
        "| setting | value |",
        "|---|---|",
        *[f"| {key} | {markdown(value)} |" for key, value in recipe(config).items()],
    ]


def evaluation_section(report: dict) -> list[str]:
    models = report["models"]
    names = list(models)
    lines = [
        "## Evaluation",
        f"On the {markdown(report['evaluated_on'])} ({report['n']} images). Brackets: bootstrap 95 % intervals "
        f"({report['bootstrap_rounds']} resamples). Decisions: {decision_text(report)}",
        "",
        "| metric | " + " | ".join(markdown(n) for n in names) + " |",
        "|---|" + "---|" * len(names),
        *[f"| {metric} | " + " | ".join(cell(models[n]["metrics"].get(metric), models[n]["ci95"].get(metric))
                                        for n in names) + " |" for metric in METRICS],
        "| expected calibration error (15 bins) | " + " | ".join(f"{models[n]['ece']:.4f}" for n in names) + " |",
        "| operating threshold on p(positive) | " + " | ".join(threshold_text(models[n]["threshold"]) for n in names) + " |",
        "",
        f"Keras' calibration error without the temperature: {report['calibration']['keras_ece_uncalibrated']:.4f}.",
        "",
        "Agreement with the Keras model on the same files: " + "; ".join(
            f"{markdown(name)} {a['label_agreement']:.2%} identical labels (mean \\|dp\\| {a['mean_abs_diff']:.4f})"
            for name, a in report["agreement_with_keras"].items()) + ".",
    ]
    if report.get("prevalence") is not None:
        lines += ["", f"At a prevalence of {report['prevalence']:g}: " + "; ".join(
            f"{markdown(n)} PPV {number(models[n]['at_prevalence']['ppv'])}, "
            f"NPV {number(models[n]['at_prevalence']['npv'])}" for n in names)
            + " (n/a: undefined, the model made no decision of that kind)."]
    return lines


def files_section(report: dict, run, model_files: Sequence[Path]) -> list[str]:
    return [
        "## Files",
        "",
        "| file | sha256 |",
        "|---|---|",
        *[f"| {markdown_code(f.name, in_table=True)} | `{sha256_of_file(f)}` |" for f in [run.model_path, *model_files]],
        "",
        f"Reproduce: {markdown_code(report['reproduce'])}.",
    ]
