#!/usr/bin/env bash
# Every figure of the README's "A new site" section, in order of importance, each step's wall
# time in $OUT/times: adapt (the README command), convert, parity, infer, inspect, forgetting,
# the cross-validated table, the zero-shot table.
#
#   PARENT=models/reference OUT=/tmp/site-b bash studies/site_adaptation_all.sh
#   CV_SIZE=0 CV_REPEATS=2    adaptation input size (0: the parent's, as `adapt` does) and repeats in the CV
#   FORGET_LIMIT=2000          a seeded sample of the parent's test files in the forgetting step (0: all)
#   CV=0                       skip the cross-validation (e.g. run it alongside)
#   ZEROSHOT=0                 skip the zero-shot table
#   REPLAY=50                  also adapt with 50 replay images per class ($RUN-replay) against forgetting
set -u
cd "$(dirname "$0")/.."
PARENT=${PARENT:-models/reference}
SITE=${SITE:-../shared/data/xca-site-b}
OUT=${OUT:-/tmp/site-adaptation}
RUN=${RUN:-models/site-b}
PY=${PY:-.venv/bin/python}
AE=${AE:-.venv/bin/artery-edge}
mkdir -p "$OUT"
if [ -e "$RUN" ]; then echo "error: $RUN exists (runs are never overwritten): set RUN=models/another-name" >&2; exit 1; fi

step() {  # step NAME COMMAND...: log to $OUT/NAME.log, wall time and exit status to $OUT/times
  local name=$1 start
  shift
  start=$(date +%s)
  echo "$name: started $(date -u +%H:%M:%S)" >> "$OUT/times"
  "$@" > "$OUT/$name.log" 2>&1
  echo "$name: exit $? after $(( $(date +%s) - start )) s" >> "$OUT/times"
}

step adapt nice -n 19 "$AE" adapt "$SITE" --from "$PARENT" --output-dir "$(dirname "$RUN")" --run-name "$(basename "$RUN")"
step convert nice -n 19 "$AE" convert "$RUN" --quantize all
step parity nice -n 19 "$PY" studies/run_parity.py --run "$RUN" --data "$SITE"
step infer nice -n 19 "$AE" infer --model "$RUN/model_int8.tflite" --image "$SITE"
step inspect "$AE" inspect "$RUN/model_int8.tflite"
ADAPTED=("$RUN")
if [ -n "${REPLAY:-}" ]; then
  step adapt_replay nice -n 19 "$AE" adapt "$SITE" --from "$PARENT" --replay "$REPLAY" \
    --output-dir "$(dirname "$RUN")" --run-name "$(basename "$RUN")-replay"
  ADAPTED+=("$RUN-replay")
fi
step forgetting nice -n 19 "$PY" studies/site_adaptation_forgetting.py --parent "$PARENT" --adapted "${ADAPTED[@]}" \
  --limit "${FORGET_LIMIT:-0}" --out "$OUT/forgetting.json"
if [ "${CV:-1}" = 1 ]; then
  step cv nice -n 19 "$PY" studies/site_adaptation_cv.py --parent "$PARENT" --data "$SITE" --folds 5 \
    --repeats "${CV_REPEATS:-2}" --image-size "${CV_SIZE:-0}" --out "$OUT/cv.json" --resume
fi
[ "${ZEROSHOT:-1}" = 1 ] && step zeroshot nice -n 19 "$PY" studies/site_zero_shot.py --parent "$PARENT" --data "$SITE" --out "$OUT/zeroshot.json"
cat "$OUT/times"
