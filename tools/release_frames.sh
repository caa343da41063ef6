#!/usr/bin/env bash
# Release a finished `train --task map` run as the project's whole-frame model (models/frames/MODEL_CARD.md):
#   models/frames/   config, run, metrics, split, history, model.keras, its evaluations on ARCADE's
#                    validation frames and on adsd-frames (another hospital), MODEL_CARD.md (tracked in git)
#   edge/reference/frame_int8.tflite   the INT8 file, package data of `edge` (`scan` without --model;
#                    models/frames links to it: one copy in git)
# Usage: tools/release_frames.sh RUN_DIR [--replace]   (RUN_DIR: a finished whole-frame run; ../shared beside)
set -euo pipefail
cd "$(dirname "$0")/.."
run=${1:?usage: tools/release_frames.sh RUN_DIR [--replace]}
rel=models/frames
packaged=edge/reference/frame_int8.tflite
[ -f "$run/run.json" ] && [ -f "$run/model.keras" ] || { echo "error: $run is not a finished training run" >&2; exit 2; }
if [ -e "$rel/model.keras" ] && [ "${2:-}" != "--replace" ]; then
  echo "error: $rel already holds a release; replace it only with a measured improvement (--replace)" >&2; exit 2
fi
rm -rf "$rel" && mkdir -p "$rel"
for f in config.json run.json metrics.json split.csv history.png history_stage1.csv history_stage2.csv model.keras; do
  [ -f "$run/$f" ] || continue  # history_stage1.csv: none when the run started from another (--epochs 0)
  cp "$run/$f" "$rel/"
done
.venv/bin/python - "$rel" <<'PY'
"""Data folders as ../shared/data/NAME and frame paths relative to the repository root, so any
checkout with ../shared beside it can convert and evaluate the release."""
import csv, io, json, sys
from pathlib import Path
rel = Path(sys.argv[1])
shared = (Path.cwd().parent / "shared" / "data").resolve()
config = json.loads((rel / "config.json").read_text())
config["data_dirs"] = [f"../shared/data/{Path(d).name}" if Path(d).resolve().parent == shared else d
                       for d in config["data_dirs"]]
config["output_dir"], config["log_dir"] = "models", "transfer_learning_log"
(rel / "config.json").write_text(json.dumps(config, indent=2))
rows = list(csv.reader((rel / "split.csv").open()))
out = io.StringIO()
csv.writer(out).writerows([rows[0]] + [[f"../shared/data/{Path(r[0]).resolve().relative_to(shared)}", r[1]]
                                       for r in rows[1:]])
(rel / "split.csv").write_text(out.getvalue())
PY
.venv/bin/artery-edge convert "$rel" --quantize all
.venv/bin/artery-edge evaluate --run "$rel" --out "$rel/evaluation-arcade-val"
.venv/bin/artery-edge evaluate --run "$rel" --data ../shared/data/adsd-frames --out "$rel/evaluation-adsd-frames"
{ .venv/bin/python -m artery_edge.evaluation.frame_card "$rel" "$rel/evaluation-arcade-val" "$rel/evaluation-adsd-frames"
  cat <<'CARD'
## Release
- artery-edge's released whole-frame model: `models/frames/` in the repository; its INT8 file is
  package data of the `edge` package (`pip install "artery-edge[edge]"`, then `artery-edge scan
  frame.png` uses it when no `--model` is given). Only the INT8 file and `model.keras` are in git;
  `tools/release_frames.sh` re-creates the other precisions.
- Research tool, not a diagnostic device. ARCADE's validation frames chose the recipe, the threshold
  and the minimum area: their figures are optimistic. `adsd-frames` (3 cine runs of 3 patients of
  another hospital in another country, boxes only: ARCADE's F1 there compares outlines with boxes and
  is not comparable to ARCADE's) was never used for a choice.
- Data: ARCADE (Popov et al., Scientific Data 11, 20, 2024; Zenodo 10390295; its licence as its
  Zenodo record states); ADSD (Danilov et al., Mendeley Data doi:10.17632/ydrm75xywg, CC BY 4.0;
  Sci Rep 11:7582, 2021). The model's code is Apache-2.0.
CARD
} > "$rel/MODEL_CARD.md"
mv "$rel/model_int8.tflite" "$packaged"
ln -s "../../$packaged" "$rel/model_int8.tflite"
rm -f "$rel"/model_float32.tflite "$rel"/model_float16.tflite "$rel"/model_dynamic.tflite
echo "released $run as $rel; $packaged sha256 $(sha256sum "$packaged" | cut -d' ' -f1) (put it in edge/reference.py)"
