#!/usr/bin/env bash
# The parity suite over several seeds and intra-op thread counts: the bounds in tests/parity.py
# must hold for every model the training can produce, not only for one machine's numbers.
# Usage: bash studies/parity_seeds.sh [SEEDS] [THREADS]   (default "1 2 3 4 5" and "1 2")
# Prints every run's parity lines and a pass/fail summary; exits non-zero if any run failed.
set -uo pipefail
cd "$(dirname "$0")/.."
seeds=${1:-1 2 3 4 5}
threads=${2:-1 2}
python=${PYTHON:-.venv/bin/python}
failed=0
for seed in $seeds; do
  for t in $threads; do
    log=$(mktemp)
    if ARTERY_EDGE_TEST_SEED=$seed TF_NUM_INTRAOP_THREADS=$t TF_NUM_INTEROP_THREADS=$t \
        "$python" -m pytest -q -s -p no:cacheprovider -m parity tests/test_parity.py >"$log" 2>&1; then
      status=passed
    else
      status=FAILED; failed=$((failed + 1))
    fi
    echo "== seed $seed, $t intra-op thread(s): $status"
    grep -E "^parity |passed|failed" "$log" | sed 's/^/   /'
    rm -f "$log"
  done
done
echo "runs failed: $failed"
exit $((failed > 0))
