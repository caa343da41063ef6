"""Training images/s per tf.distribute strategy and replica count, side by side in one run.

Each configuration trains in a fresh process (logical devices are fixed when TensorFlow
starts): the default strategy, then MirroredStrategy over 1, 2 ... replicas. On a machine
without GPUs the replicas are logical CPU devices sharing the same cores, so the ratio is
expected near 1.0 (or below: the same cores, plus the all-reduce). Configurations are
interleaved over the repeats and the medians reported, because the machine is shared.

    python benchmarks/train_scaling.py --replicas 1 2 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

WORKER = r"""
import json, sys, time
import numpy as np
import tensorflow as tf
args = json.loads(sys.argv[1])
gpus = tf.config.list_physical_devices("GPU")
if not gpus and args["replicas"] > 1:
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * args["replicas"])
import keras
from artery_edge.trainer.config import TrainConfig
from artery_edge.trainer.model import build_model, compile_model, set_stage
if args["strategy"] == "default":
    strategy = tf.distribute.get_strategy()
else:
    kind = "GPU" if gpus else "CPU"
    strategy = tf.distribute.MirroredStrategy([f"/{kind.lower()}:{i}" for i in range(args["replicas"])])
config = TrainConfig(image_size=args["size"], alpha=args["alpha"], weights="none", seed=0)
rng = np.random.default_rng(0)
n = args["images"]
x = rng.integers(0, 256, (n, args["size"], args["size"], 3)).astype("float32")
y = rng.integers(0, 2, n).astype("int32")
batch = args["batch"] * strategy.num_replicas_in_sync
data = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch).cache().prefetch(2)
with strategy.scope():
    model = build_model(2, config)
    set_stage(model, args["stage"], pretrained=True)
    compile_model(model, 1e-4)
model.fit(data, epochs=1, verbose=0)  # warm-up: tracing, first allocations
start = time.perf_counter()
model.fit(data, epochs=args["epochs"], verbose=0)
seconds = time.perf_counter() - start
print(json.dumps({"images_per_s": n * args["epochs"] / seconds, "replicas": strategy.num_replicas_in_sync}))
"""


def run_once(strategy: str, replicas: int, args) -> float:
    spec = {"strategy": strategy, "replicas": replicas, "size": args.image_size, "alpha": args.alpha,
            "images": args.images, "epochs": args.epochs, "batch": args.batch_size, "stage": args.stage}
    done = subprocess.run([sys.executable, "-c", WORKER, json.dumps(spec)], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[1])
    if done.returncode != 0:
        raise SystemExit(f"error: {strategy} x{replicas} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])["images_per_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--image-size", type=int, default=96)
    parser.add_argument("--alpha", type=float, default=0.35)
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32, help="per replica")
    parser.add_argument("--stage", type=int, default=2, choices=[1, 2], help="1: frozen base, 2: fine-tuning")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    configs = [("default", 1)] + [("mirrored", r) for r in args.replicas]
    samples: dict[tuple, list[float]] = {c: [] for c in configs}
    for repeat in range(args.repeats):
        for config in configs:
            samples[config].append(run_once(*config, args))
            print(f"repeat {repeat + 1}: {config[0]} x{config[1]}: {samples[config][-1]:.1f} img/s", file=sys.stderr)
    base = statistics.median(samples[("default", 1)])
    print(f"{'strategy':<10}{'replicas':>9}{'img/s (median)':>16}{'ratio to default':>18}   "
          f"(stage {args.stage}, {args.image_size} px, alpha {args.alpha}, batch {args.batch_size}/replica, "
          f"{args.repeats} repeats)")
    for (strategy, replicas), values in samples.items():
        median = statistics.median(values)
        print(f"{strategy:<10}{replicas:>9}{median:>16.1f}{median / base:>18.2f}")


if __name__ == "__main__":
    main()
