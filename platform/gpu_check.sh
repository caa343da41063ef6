#!/usr/bin/env bash
# One-command GPU check: train the real 128 px model for a few epochs with --strategy auto
# --mixed-precision (MirroredStrategy over every visible GPU when there are several) and print
# training images/s from the per-epoch times. Needs TensorFlow with CUDA and the data:
#   bash platform/gpu_check.sh [DATA_DIR] [EPOCHS]
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-../shared/data/stenosis-patches}
epochs=${2:-3}
python=${PYTHON:-.venv/bin/python}
out=$(mktemp -d)
"$python" -c "import tensorflow as tf; g = tf.config.list_physical_devices('GPU'); print(f'{len(g)} GPU(s): {g}'); assert g, 'no GPU visible'"
"$python" -m artery_edge.cli train "$data" --output-dir "$out" --run-name gpu-check --image-size 128 --alpha 1.0 \
  --weights imagenet --strategy auto --mixed-precision --epochs 1 --fine-tune-epochs "$epochs" \
  --learning-rate 1e-3 --fine-tune-learning-rate 1e-4 --batch-size 64 --no-tensorboard 2>&1 | tee "$out/log"
"$python" - "$out/gpu-check" "$out/log" <<'PY'
import json, re, sys
run = json.load(open(f"{sys.argv[1]}/run.json"))
times = [float(t) for t in re.findall(r"\d+/\d+ - (\d+)s - ", open(sys.argv[2]).read())]
train = run["counts"]["train"]
print(f"strategy {run['strategy']}, {run['replicas']} replica(s), global batch {run['global_batch_size']}, "
      f"mixed precision {run['mixed_precision']}")
for stage, seconds in zip(["frozen"] + ["fine-tune"] * (len(times) - 1), times):
    print(f"{stage:10} epoch: {seconds:.0f} s, {train / seconds:.0f} img/s")
PY
