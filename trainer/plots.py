"""Training plots: learning curves over both stages and image grids, written as PNG."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from artery_edge.edge.atomic import atomic_path  # noqa: E402


def save_figure(fig, path: Path) -> None:
    """Write ``fig`` as a PNG atomically (a kill mid-write leaves no cut image), then free it."""
    with atomic_path(path) as temp:
        fig.savefig(temp, dpi=100, format="png")
    plt.close(fig)


def plot_history(history: dict[str, list[float]], stage_boundary: int, path: Path) -> None:
    """Accuracy and loss per epoch (1-based), the start of fine-tuning marked."""
    epochs = np.arange(1, len(history.get("loss", [])) + 1)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, metric in zip(axes, ("accuracy", "loss")):
        for key, style in ((metric, "-o"), (f"val_{metric}", "-s")):
            if history.get(key):
                ax.plot(epochs, history[key], style, markersize=3, label=key.replace("val_", "validation "))
        if 0 < stage_boundary < len(epochs):
            ax.axvline(stage_boundary + 0.5, color="grey", linestyle="--", label="start fine-tuning")
        ax.set_xlabel("epoch")
        ax.set_title(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    save_figure(fig, path)


def plot_image_grid(images: np.ndarray, titles: Sequence[str], path: Path, suptitle: str = "") -> None:
    """A square-ish grid of uint8/float 0..255 images with a title under each."""
    n = len(images)
    cols = min(n, int(math.ceil(math.sqrt(n)))) or 1
    rows = int(math.ceil(n / cols)) or 1
    fig, axes = plt.subplots(rows, cols, figsize=(2 * cols, 2.2 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, title in zip(axes.flat, images, titles):
        ax.imshow(np.clip(np.asarray(image), 0, 255).astype(np.uint8))
        ax.set_title(title, fontsize=8)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    save_figure(fig, path)


def plot_confusion(matrix: np.ndarray, labels: Sequence[str], path: Path, title: str = "") -> None:
    fig, ax = plt.subplots(figsize=(3.6, 3.2))
    ax.imshow(matrix, cmap="Blues")
    for (i, j), value in np.ndenumerate(matrix):
        ax.text(j, i, str(value), ha="center", va="center", color="black")
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)
