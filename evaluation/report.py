"""The evaluation's files: metrics.json, probabilities.npz, predictions.csv, report.md, the
plots and MODEL_CARD.md, all from what ``evaluation.evaluate.evaluate`` measured (no decision
is made again here)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from artery_edge.edge.atomic import new_folder
from artery_edge.edge.text import literal_figures, markdown, markdown_code
from artery_edge.evaluation.evaluate import Evaluation
from artery_edge.evaluation.formatting import cell, decision_text, number, threshold_text
from artery_edge.evaluation.model_card import write_model_card
from artery_edge.trainer.plots import plot_confusion

METRIC_ORDER = ("accuracy", "balanced_accuracy", "sensitivity", "specificity", "ppv", "npv", "f1", "roc_auc")


def write_evaluation(result: Evaluation, out_dir: Optional[Path] = None) -> Path:
    """Write every file of an evaluation into a new folder and return it. The folder is filled
    under a temporary name and renamed when complete: a failure leaves no half-written one.

    Args:
        result: what ``evaluate`` measured.
        out_dir: the folder (default: RUN/evaluation); taken, ``-2``, ``-3``... is used instead.
    """
    folder, _ = new_folder(Path(out_dir) if out_dir else result.run.run_dir / "evaluation",
                           lambda temp: write_files(result, temp))
    return folder


def write_files(result: Evaluation, folder: Path) -> None:
    report, scores = result.report, result.scores
    (folder / "metrics.json").write_text(json.dumps(report, indent=2))
    np.savez_compressed(folder / "probabilities.npz", files=np.array([str(s.path) for s in result.samples]),
                        labels=result.labels, **{s.name: s.probabilities for s in scores})
    write_predictions(folder / "predictions.csv", result.samples, result.run, scores, result.positive)
    write_plots(report, scores, result.labels, result.positive, folder)
    write_markdown(report, folder / "report.md")
    write_model_card(folder / "MODEL_CARD.md", report, result.run, result.model_files)
    return folder


def metrics_table(report: dict, escape: Callable[[str], str] = markdown) -> list[str]:
    """The metrics of every model side by side, a Markdown table (``escape``: how names from
    files are written; ``edge.text.terminal`` for a terminal)."""
    names = list(report["models"])
    lines = ["| metric | " + " | ".join(escape(n) for n in names) + " |", "|---|" + "---|" * len(names)]
    for metric in METRIC_ORDER:
        cells = [cell(report["models"][n]["metrics"].get(metric), report["models"][n]["ci95"].get(metric)) for n in names]
        lines.append(f"| {metric} | " + " | ".join(cells) + " |")
    lines.append("| ECE (15 bins) | " + " | ".join(f"{report['models'][n]['ece']:.4f}" for n in names) + " |")
    if report.get("prevalence") is not None:
        for key in ("ppv", "npv"):
            cells = [report["models"][n]["at_prevalence"][key] for n in names]
            lines.append(f"| {key} at prevalence {report['prevalence']:g} | " + " | ".join(map(number, cells)) + " |")
    lines.append("| threshold | " + " | ".join(threshold_text(report["models"][n]["threshold"]) for n in names) + " |")
    lines.append("| confusion [[TN, FP], [FN, TP]] | " + " | ".join(str(report["models"][n]["confusion_matrix"]) for n in names) + " |")
    return lines


def write_markdown(report: dict, path: Path) -> None:
    lines = [
        "# Evaluation",
        "",
        f"Run: {markdown_code(report['run_dir'])}; evaluated on the {markdown(report['evaluated_on'])} "
        f"({report['n']} images: " + ", ".join(f"{markdown(k)} {v}" for k, v in report["class_counts"].items()) + ").",
        f"Positive class: **{markdown(report['positive_class'])}** (sensitivity = its recall). "
        f"Brackets: bootstrap 95% intervals ({report['bootstrap_rounds']} resamples).",
        "",
        *metrics_table(report),
        "",
        "## Agreement of each TFLite variant with Keras (same files)",
        "",
        "| model | identical labels | mean abs diff p | max abs diff p | conversion (file metadata) |",
        "|---|---|---|---|---|",
    ]
    for name, a in report["agreement_with_keras"].items():
        notes = markdown(", ".join(f"{k} {v}" for k, v in report.get("conversion", {}).get(name, {}).items()) or "-")
        lines.append(f"| {markdown(name)} | {a['label_agreement']:.4f} | {a['mean_abs_diff']:.5f} | {a['max_abs_diff']:.5f} | {notes} |")
    calibration = report["calibration"]
    lines += ["", "## Calibration", "",
              f"Temperature {calibration['temperature']:.4f}, fitted on the validation split after training and "
              "baked into every exported graph (softmax(logits / T)). Keras' expected calibration error on these "
              f"files without it (T = 1): {calibration['keras_ece_uncalibrated']:.4f}; with it: "
              f"{report['models']['keras']['ece']:.4f}. Per model in the table above; `reliability.png`."]
    lines += ["", f"Decisions: {decision_text(report)}", "", f"Reproduce: {markdown_code(report['reproduce'])}."]
    lines += ["", "Plots: `roc.png`, `reliability.png`, `confusion_<model>.png`, `scatter_<model>.png`. "
              "Per-image probabilities and labels: `predictions.csv`.", "",
              "Research tool, not a diagnostic device: these figures describe this data set only."]
    path.write_text("\n".join(lines) + "\n")


def write_plots(report: dict, scores: Sequence, labels: np.ndarray, positive: int, folder: Path) -> None:
    import matplotlib

    literal_figures(matplotlib)
    import matplotlib.pyplot as plt

    for s in scores:
        at = "argmax" if s.threshold is None else f"threshold {s.threshold:.3f}"
        plot_confusion(np.array(report["models"][s.name]["confusion_matrix"]), report["class_names"],
                       folder / f"confusion_{s.name}.png", f"{s.name} ({at})")
    plot_roc(report, scores, labels, positive, folder / "roc.png")
    plot_reliability(report, scores, folder / "reliability.png")
    keras_scores = scores[0].probabilities[:, positive]
    for s in scores[1:]:
        fig, ax = plt.subplots(figsize=(4.5, 4.5))
        ax.scatter(keras_scores, s.probabilities[:, positive], s=6, alpha=0.5)
        ax.plot([0, 1], [0, 1], color="grey", linestyle=":")
        ax.set_xlabel(f"Keras p({report['positive_class']})")
        ax.set_ylabel(f"{s.name} p({report['positive_class']})")
        fig.tight_layout()
        fig.savefig(folder / f"scatter_{s.name}.png", dpi=100)
        plt.close(fig)


def plot_roc(report: dict, scores: Sequence, labels: np.ndarray, positive: int, path: Path) -> None:
    """Every model's ROC curve (scikit-learn's points) in one plot."""
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_curve

    fig, ax = plt.subplots(figsize=(5, 5))
    for s in scores:
        auc = report["models"][s.name]["metrics"]["roc_auc"]
        if auc is None:  # one class only: no curve
            ax.plot([], [], label=s.name)
            continue
        fpr, tpr, _ = roc_curve(labels == positive, s.probabilities[:, positive])
        ax.plot(fpr, tpr, label=f"{s.name} (AUC {auc:.3f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":")
    ax.set_xlabel("1 - specificity")
    ax.set_ylabel("sensitivity")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_reliability(report: dict, scores: Sequence, path: Path) -> None:
    """Accuracy against confidence per non-empty bin, every model in one plot."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5))
    for s in scores:
        table = report["models"][s.name]["reliability"]
        used = [i for i, n in enumerate(table["count"]) if n]
        ax.plot([table["confidence"][i] for i in used], [table["accuracy"][i] for i in used], marker="o",
                label=f"{s.name} (ECE {report['models'][s.name]['ece']:.3f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":")
    ax.set_xlim(0.45 if len(report["class_names"]) == 2 else 0, 1)
    ax.set_xlabel("confidence (mean of the bin)")
    ax.set_ylabel("accuracy in the bin")
    ax.set_title(f"reliability, T = {report['calibration']['temperature']:.3f}")
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_predictions(path: Path, samples: Sequence, run, scores: Sequence, positive: int) -> None:
    """One row per file: the true class, and per model its p(positive) and label (so variants'
    disagreements can be looked at one by one). Files are relative to the data folder when inside it."""
    import csv

    from artery_edge.edge.report_csv import spreadsheet_safe

    positive_name = run.class_names[positive]
    header = ["file", "true_class"] + [f"{column}_{s.name}" for s in scores
                                       for column in (f"p_{positive_name}", "label")]
    with open(path, "x", newline="", encoding="utf-8", errors="backslashreplace") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for i, sample in enumerate(samples):
            try:
                name = Path(sample.path).relative_to(run.data_dir).as_posix()
            except ValueError:
                name = str(sample.path)
            row = [spreadsheet_safe(name), run.class_names[sample.label]]
            for s in scores:
                row += [f"{s.probabilities[i, positive]:.6f}", run.class_names[s.predicted[i]]]
            writer.writerow(row)

