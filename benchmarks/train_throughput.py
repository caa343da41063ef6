"""Training throughput: the real tf.data input pipeline vs the same model on in-memory tensors.

For stage 1 (frozen base) and stage 2 (fine-tuning), epochs through the pipeline and on
NumPy arrays alternate, so both see the same machine load; medians and their ratio are
printed (target: pipeline >= 0.9 of in-memory). The first pipeline epoch also decodes and
fills the cache; it is reported separately.

    python benchmarks/train_throughput.py --data ../shared/data/stenosis-patches --count 1024
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import warnings  # noqa: E402

import numpy as np  # noqa: E402

warnings.filterwarnings("ignore", message=".*shuffle=True.*")  # Keras: tf.data input is pre-shuffled


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--count", type=int, default=1024, help="training images used (stratified sample)")
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--alpha", type=float, default=1.0)
    parser.add_argument("--weights", default="imagenet")
    parser.add_argument("--repeats", type=int, default=3, help="timed epochs per source and stage")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import keras

    from artery_edge.converters.tflite import calibration_samples
    from artery_edge.trainer.config import TrainConfig
    from artery_edge.trainer.model import build_model, compile_model, set_stage
    from artery_edge.trainer.pipeline import load_arrays, make_dataset
    from artery_edge.trainer.scan import scan_dataset

    config = TrainConfig(image_size=args.image_size, alpha=args.alpha, weights=args.weights)
    samples = calibration_samples(scan_dataset(args.data, validate=False).samples, args.count)
    model = build_model(2, config)
    pipeline = make_dataset(samples, args.image_size, config.batch_size, shuffle=True)
    x, y = load_arrays(samples, args.image_size)
    x = x.astype(np.float32)

    def epoch(source) -> float:
        start = time.perf_counter()
        if source == "pipeline":
            model.fit(pipeline, epochs=1, verbose=0)
        else:
            model.fit(x, y, batch_size=config.batch_size, epochs=1, shuffle=True, verbose=0)
        return len(samples) / (time.perf_counter() - start)

    results = {}
    for stage, lr in ((1, 1e-4), (2, 1e-5)):
        set_stage(model, stage)
        compile_model(model, lr)
        first = epoch("pipeline") if stage == 1 else None  # decode + cache fill (+ tracing)
        epoch("memory")  # trace the array path too
        if stage == 2:
            epoch("pipeline")
        rates = {"pipeline": [], "memory": []}
        for _ in range(args.repeats):
            for source in ("pipeline", "memory"):
                rates[source].append(epoch(source))
        pipe, mem = statistics.median(rates["pipeline"]), statistics.median(rates["memory"])
        results[f"stage{stage}"] = {
            "pipeline_images_per_s": round(pipe, 1), "memory_images_per_s": round(mem, 1),
            "ratio": round(pipe / mem, 3), "runs": rates,
            **({"first_pipeline_epoch_images_per_s": round(first, 1)} if first else {}),
        }
    meta = {"images": len(samples), "image_size": args.image_size, "alpha": args.alpha, "keras": keras.__version__}
    if args.json:
        print(json.dumps({**meta, **results}, indent=2))
        return
    print(f"{len(samples)} images at {args.image_size} px, alpha {args.alpha}; medians of {args.repeats} alternating epochs")
    for stage, r in results.items():
        print(f"{stage}: pipeline {r['pipeline_images_per_s']:.1f} img/s, in-memory {r['memory_images_per_s']:.1f} img/s, "
              f"ratio {r['ratio']:.3f}" + (f" (first pipeline epoch incl. decode: {r['first_pipeline_epoch_images_per_s']:.1f} img/s)"
                                           if "first_pipeline_epoch_images_per_s" in r else ""))


if __name__ == "__main__":
    main()
