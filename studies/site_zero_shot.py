"""Before any label: does anything in the input pipeline help a trained run on a new site?

The parent sees the site's patches (xca-site-b: 32 x 32 grayscale) through variants of the
input pipeline, and ROC AUC (no threshold needed) and accuracy at the parent's stored
threshold are measured on every patch of the site:

- up-sampling: Pillow bilinear (the pipeline's, training and device alike), bicubic, nearest,
  lanczos, and TensorFlow's bilinear (what ``--site-augmentation`` uses after its 32 px step);
- input size: the base re-built at other sizes with the parent's weights;
- contrast: as is; each patch's mean and spread matched to the parent's training patches;
  Pillow's autocontrast (1 % clipped);
- weights: the parent's base blended back toward the ImageNet weights it was fine-tuned from
  (``--init-blend``, WiSE-FT), with the AUC on a sample of the parent's own test split beside it:
  what the blend costs the original site before any adaptation.

It also checks the pipeline's own consistency: Pillow's and TensorFlow's bilinear up-sampling
of the same 32 px patch (mean absolute difference in 0..255 units).

    .venv/bin/python studies/site_zero_shot.py --parent models/reference --data ../shared/data/xca-site-b
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from artery_edge.edge.imaging import open_image  # noqa: E402
from artery_edge.trainer.metrics import binary_metrics  # noqa: E402
from artery_edge.trainer.samples import subset  # noqa: E402
from artery_edge.trainer.scan import scan_dataset  # noqa: E402

RESAMPLE = {"pillow-bilinear": Image.Resampling.BILINEAR, "pillow-bicubic": Image.Resampling.BICUBIC,
            "pillow-nearest": Image.Resampling.NEAREST, "pillow-lanczos": Image.Resampling.LANCZOS}


def reference_statistics(run, count: int = 400) -> tuple[float, float]:
    """Mean and spread of the per-patch mean and standard deviation of the parent's training patches."""
    pool = subset(run.split(), "train")
    chosen = [pool[i] for i in np.random.default_rng(0).permutation(len(pool))[:count]]
    stats = np.array([(a.mean(), a.std()) for a in (np.asarray(open_image(s.path).convert("L"), float) for s in chosen)])
    return float(stats[:, 0].mean()), float(stats[:, 1].mean())


def contrast_variant(image: Image.Image, how: str, reference: tuple[float, float]) -> Image.Image:
    if how == "as is":
        return image
    if how == "autocontrast":
        return ImageOps.autocontrast(image, cutoff=1)
    gray = np.asarray(image.convert("L"), float)
    matched = (gray - gray.mean()) / max(gray.std(), 1e-6) * reference[1] + reference[0]
    return Image.fromarray(np.clip(np.rint(matched), 0, 255).astype(np.uint8), "L").convert("RGB")


def prepare(files: list[Path], size: int, resize: str, contrast: str, reference: tuple[float, float]) -> np.ndarray:
    images = []
    for file in files:
        image = contrast_variant(open_image(file), contrast, reference)
        if resize == "tf-bilinear":
            import tensorflow as tf

            array = tf.image.resize(np.asarray(image, np.float32)[None], (size, size), method="bilinear")[0].numpy()
            images.append(np.clip(np.rint(array), 0, 255).astype(np.uint8))
        else:
            images.append(np.asarray(image.resize((size, size), RESAMPLE[resize]), np.uint8))
    return np.stack(images)


def serving_at(run, size: int):
    """The parent's serving graph (its temperature) with the base re-built for ``size`` px."""
    from artery_edge.trainer.config import TrainConfig
    from artery_edge.trainer.model import build_model, serving_model

    parent = run.keras_model()
    if size != run.image_size:
        model = build_model(len(run.class_names), TrainConfig(alpha=run.config.alpha, image_size=size,
                                                              weights="none"))
        for name in ("mobilenetv2", "classifier"):
            model.get_layer(name).set_weights(parent.get_layer(name).get_weights())
        parent = model
    return serving_model(parent, run.temperature)


def blended(parent, blend: float):
    """The parent's serving graph, its base ``blend`` x its own weights + the rest ImageNet's, as
    ``adapt --init-blend`` starts (the same :func:`trainer.parent.copy_weights`)."""
    from artery_edge.trainer.model import build_model, serving_model
    from artery_edge.trainer.parent import copy_weights

    run = parent.run
    model = build_model(len(run.class_names), run.config.replace(init_from=str(run.run_dir), init_blend=blend))
    copy_weights(parent, model, blend)
    return serving_model(model, run.temperature)


def blend_rows(run, blends: list[float], site: tuple[list[Path], np.ndarray], limit: int) -> list[dict]:
    """Zero-shot AUC on the site and on ``limit`` files of the parent's test split, per blend."""
    from artery_edge.trainer.parent import load_parent

    parent = load_parent(run.run_dir)
    test = subset(run.split(), "test")
    test = [test[i] for i in np.random.default_rng(0).permutation(len(test))[:limit]]
    sets = {"site": (prepare(site[0], run.image_size, "pillow-bilinear", "as is", (0, 1)), site[1]),
            "original": (prepare([s.path for s in test], run.image_size, "pillow-bilinear", "as is", (0, 1)),
                         np.array([s.label for s in test]))}
    rows = []
    for blend in blends:
        model = blended(parent, blend)
        row = {"init_blend": blend, "original_n": len(test)}
        for name, (images, labels) in sets.items():
            scores = np.concatenate([np.asarray(model(images[i:i + 64].astype(np.float32), training=False))[:, 1]
                                     for i in range(0, len(images), 64)])
            row[f"{name}_roc_auc"] = binary_metrics(labels, scores, (scores >= 0.5).astype(int))["roc_auc"]
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parent", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--sizes", default="96,128,160,224")
    parser.add_argument("--blends", default="1,0.9,0.8,0.7,0.6,0.5,0.4,0.3",
                        help="Parent shares of the base to try (--init-blend); '' skips the blend table.")
    parser.add_argument("--original-limit", type=int, default=1500,
                        help="Files of the parent's test split (seeded sample) for the blend table's original-site AUC.")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    from artery_edge.trainer.runs import load_run

    start = time.perf_counter()
    run = load_run(args.parent)
    samples = scan_dataset(args.data).samples
    files, labels = [s.path for s in samples], np.array([s.label for s in samples])
    reference = reference_statistics(run)
    threshold = run.threshold if run.threshold is not None else 0.5
    variants = [(run.image_size, resize, "as is") for resize in (*RESAMPLE, "tf-bilinear")]
    variants += [(int(s), "pillow-bilinear", "as is") for s in args.sizes.split(",") if int(s) != run.image_size]
    variants += [(run.image_size, "pillow-bilinear", c) for c in ("matched to the parent's data", "autocontrast")]
    models: dict[int, object] = {}
    rows = []
    for size, resize, contrast in variants:
        model = models.setdefault(size, serving_at(run, size))
        scores = np.asarray(model(prepare(files, size, resize, contrast, reference).astype(np.float32), training=False))[:, 1]
        found = binary_metrics(labels, scores, (scores >= threshold).astype(int), positive=1)
        rows.append({"size": size, "resize": resize, "contrast": contrast, "roc_auc": found["roc_auc"],
                     "accuracy": found["accuracy"], "sensitivity": found["sensitivity"],
                     "specificity": found["specificity"]})
    pillow = prepare(files, run.image_size, "pillow-bilinear", "as is", reference).astype(float)
    tf_bilinear = prepare(files, run.image_size, "tf-bilinear", "as is", reference).astype(float)
    gap = float(np.abs(pillow - tf_bilinear).mean())
    print(f"{run.run_dir.name} zero-shot on {args.data.name} ({len(files)} patches), threshold {threshold:.3f}; "
          f"{(time.perf_counter() - start) / 60:.1f} min")
    print("| input size | up-sampling | contrast | ROC AUC | accuracy | sensitivity | specificity |\n"
          "|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['size']} | {r['resize']} | {r['contrast']} | {r['roc_auc']:.3f} | {r['accuracy']:.3f} "
              f"| {r['sensitivity']:.3f} | {r['specificity']:.3f} |")
    print(f"Pillow vs TensorFlow bilinear, 32 -> {run.image_size} px: mean |difference| {gap:.2f} of 255; "
          f"site patches mean {pillow.mean():.1f}, parent's training patches mean {reference[0]:.1f} "
          f"(per-patch spread {reference[1]:.1f})")
    blends = blend_rows(run, [float(b) for b in args.blends.split(",") if b], (files, labels), args.original_limit) \
        if args.blends else []
    if blends:
        print(f"\n| --init-blend (parent's share) | ROC AUC on {args.data.name} | ROC AUC on the parent's test split "
              f"({blends[0]['original_n']} files) |\n|---|---|---|")
        for r in blends:
            print(f"| {r['init_blend']:g} | {r['site_roc_auc']:.3f} | {r['original_roc_auc']:.4f} |")
    if args.out:
        args.out.write_text(json.dumps({"rows": rows, "blends": blends, "pillow_vs_tf_bilinear": gap,
                                        "reference": reference}, indent=2))


if __name__ == "__main__":
    main()
