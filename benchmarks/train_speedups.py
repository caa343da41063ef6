"""What makes fine-tuning faster on CPU: each variant against today's pipeline, side by side.

Fine-tuning (stage 2, the whole base trains) is most of a run's time. Every variant gets its
own model, compiled once and warmed up once (tracing, XLA compilation and filling the
decoded-image cache are excluded); then timed epochs over the same images alternate between
the variants, so all see the same machine load. Medians and ratios to the baseline
(the P-ADSD recipe's settings: batch 64, no XLA, one step per execution, cached tf.data pipeline).

    .venv/bin/python benchmarks/train_speedups.py --data ../shared/data/stenosis-patches --count 512
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import warnings  # noqa: E402

warnings.filterwarnings("ignore", message=".*shuffle=True.*")

NO_AUGMENTATION = {"flip": False, "rotation": 0.0, "zoom": 0.0, "contrast": 0.0, "brightness": 0.0}
VARIANTS = {  # name: TrainConfig changes (batch 64, the recipe's, unless said)
    "recipe (batch 64, 128 px, augmentation in the model)": {"batch_size": 64},
    "batch 32": {"batch_size": 32},
    "steps_per_execution 8": {"batch_size": 64, "steps_per_execution": 8},
    # XLA is no training option (docs/experiments.md): kept here as the evidence. Keras refuses it for
    # a model holding RandomRotation/RandomZoom (supports_jit False) and falls back with a warning:
    # 'XLA engaged' below says whether it really compiled.
    "jit_compile (XLA) asked, augmentation in the model": {"batch_size": 64, "jit_compile": True},
    "no augmentation layers": {"batch_size": 64, **NO_AUGMENTATION},
    "no augmentation layers + XLA": {"batch_size": 64, "jit_compile": True, **NO_AUGMENTATION},
    "96 px input": {"batch_size": 64, "image_size": 96},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--count", type=int, default=512, help="training images (stratified sample)")
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3, help="timed epochs per variant")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import keras

    from artery_edge.converters.tflite import calibration_samples
    from artery_edge.trainer.config import TrainConfig
    from artery_edge.trainer.model import build_model, compile_model, set_stage
    from artery_edge.trainer.pipeline import make_dataset
    from artery_edge.trainer.scan import scan_dataset

    samples = calibration_samples(scan_dataset(args.data, validate=False).samples, args.count)
    runners, engaged = {}, {}
    for name, changes in VARIANTS.items():
        changes = dict(changes)
        jit = changes.pop("jit_compile", False)
        config = TrainConfig(image_size=args.image_size, alpha=1.0).replace(**changes)
        keras.utils.set_random_seed(0)
        model = build_model(2, config)
        set_stage(model, 2)
        compile_model(model, 1e-5, config)
        if jit:
            model.compile(optimizer=model.optimizer, loss=model.loss, metrics=["accuracy"], jit_compile=True)
        data = make_dataset(samples, config.image_size, config.batch_size, shuffle=True)
        model.fit(data, epochs=1, verbose=0)  # warm-up: tracing, XLA, decode + cache
        runners[name] = (model, data)
        engaged[name] = bool(model.jit_compile)  # False when Keras fell back from XLA
        print(f"ready: {name} (XLA engaged: {engaged[name]})", flush=True)

    rates: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for _ in range(args.repeats):
        for name, (model, data) in runners.items():
            start = time.perf_counter()
            model.fit(data, epochs=1, verbose=0)
            rates[name].append(len(samples) / (time.perf_counter() - start))
    base = statistics.median(rates[next(iter(VARIANTS))])
    rows = [{"variant": name, "images_per_s": round(statistics.median(r), 1),
             "ratio": round(statistics.median(r) / base, 3), "xla": engaged[name], "runs": [round(x, 1) for x in r]}
            for name, r in rates.items()]
    if args.json:
        print(json.dumps({"images": len(samples), "repeats": args.repeats, "rows": rows}, indent=2))
        return
    print(f"\nfine-tuning, {len(samples)} images, MobileNetV2 alpha 1.0; medians of {args.repeats} interleaved epochs\n")
    print("| variant | XLA engaged | images/s | vs the recipe |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {r['variant']} | {'yes' if r['xla'] else 'no'} | {r['images_per_s']} | {r['ratio']:.2f}x |")


if __name__ == "__main__":
    main()
