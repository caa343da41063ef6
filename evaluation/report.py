"""The evaluation's human side: a Markdown table and PNG plots."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from trainer.metrics import roc_curve
from trainer.plots import plot_confusion

METRIC_ORDER = ("accuracy", "balanced_accuracy", "sensitivity", "specificity", "ppv", "npv", "f1", "roc_auc")


def _cell(value, interval) -> str:
    if value is None:
        return "n/a"
    return f"{value:.3f} [{interval[0]:.3f}, {interval[1]:.3f}]" if interval else f"{value:.3f}"


def metrics_table(report: dict) -> list[str]:
    names = list(report["models"])
    lines = ["| metric | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for metric in METRIC_ORDER:
        cells = [_cell(report["models"][n]["metrics"].get(metric), report["models"][n]["ci95"].get(metric)) for n in names]
        lines.append(f"| {metric} | " + " | ".join(cells) + " |")
    lines.append("| threshold | " + " | ".join(f"{report['models'][n]['threshold']:.4f}" for n in names) + " |")
    lines.append("| confusion [[TN, FP], [FN, TP]] | " + " | ".join(str(report["models"][n]["confusion_matrix"]) for n in names) + " |")
    return lines


def write_markdown(report: dict, path: Path) -> None:
    lines = [
        "# Evaluation",
        "",
        f"Run: `{report['run_dir']}`; evaluated on the {report['evaluated_on']} "
        f"({report['n']} images: " + ", ".join(f"{k} {v}" for k, v in report["class_counts"].items()) + ").",
        f"Positive class: **{report['positive_class']}** (sensitivity = its recall). "
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
        notes = ", ".join(f"{k} {v}" for k, v in report.get("conversion", {}).get(name, {}).items()) or "-"
        lines.append(f"| {name} | {a['label_agreement']:.4f} | {a['mean_abs_diff']:.5f} | {a['max_abs_diff']:.5f} | {notes} |")
    lines += ["", "Plots: `roc.png`, `confusion_<model>.png`, `scatter_<model>.png`.", "",
              "Research tool, not a diagnostic device: these figures describe this data set only."]
    path.write_text("\n".join(lines) + "\n")


def write_plots(report: dict, scores: Sequence, labels: np.ndarray, positive: int, folder: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for s in scores:
        plot_confusion(np.array(report["models"][s.name]["confusion_matrix"]), report["class_names"],
                       folder / f"confusion_{s.name}.png", f"{s.name} (threshold {s.threshold:.3f})")
    fig, ax = plt.subplots(figsize=(5, 5))
    for s in scores:
        fpr, tpr, _ = roc_curve(labels == positive, s.probabilities[:, positive])
        auc = report["models"][s.name]["metrics"]["roc_auc"]
        ax.plot(fpr, tpr, label=f"{s.name} (AUC {auc:.3f})" if auc is not None else s.name)
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":")
    ax.set_xlabel("1 - specificity")
    ax.set_ylabel("sensitivity")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(folder / "roc.png", dpi=100)
    plt.close(fig)
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
