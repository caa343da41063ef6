#!/usr/bin/env bash
# The recipe search of the P-ADSD model, one training run per experiment (see the README's
# table). Every run trains on the published training files of both shared folders (train-*)
# and holds out the published validation files (validation-*) as its test split; its own
# validation split (early stopping, calibration, threshold) is 10 % of the train-* files.
#
#   bash benchmarks/recipe_search.sh [EXPERIMENT ...]     # default: all, in order
#   python benchmarks/experiment_table.py models/padsd-*  # the table
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-../shared}
CLI=${CLI:-.venv/bin/artery-edge}
OUT=${OUT:-models}
DATA="$SHARED/data/stenosis-patches $SHARED/data/stenosis-patches-extra-negatives"
COMMON="--split-pattern validation-=test --val-fraction 0.1 --alpha 1.0 --no-tensorboard --batch-size 64 --output-dir $OUT"

declare -A EXPERIMENTS=(
  [e1-96-constant]="--image-size 96 --learning-rate 1e-3 --epochs 2 --fine-tune-learning-rate 1e-4 --fine-tune-epochs 8 --patience 3"
  [e2-128-cosine]="--image-size 128 --learning-rate 1e-3 --epochs 2 --fine-tune-learning-rate 3e-4 --fine-tune-epochs 10 --schedule cosine --warmup-epochs 1 --patience 10"
  [e3-128-cosine-site-ls]="--image-size 128 --learning-rate 1e-3 --epochs 2 --fine-tune-learning-rate 3e-4 --fine-tune-epochs 10 --schedule cosine --warmup-epochs 1 --patience 10 --site-augmentation 0.25 --label-smoothing 0.05"
)
ORDER=(e1-96-constant e2-128-cosine e3-128-cosine-site-ls)

for name in "${@:-${ORDER[@]}}"; do
  [[ -v EXPERIMENTS[$name] ]] || { echo "unknown experiment $name (known: ${ORDER[*]})" >&2; exit 2; }
  # shellcheck disable=SC2086  # word splitting of the option lists is intended
  $CLI train $DATA $COMMON ${EXPERIMENTS[$name]} --run-name "padsd-$name"
done
