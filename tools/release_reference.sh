#!/usr/bin/env bash
# Release a finished run as the project's reference model (models/reference/MODEL_CARD.md):
#   models/reference/   config, run, metrics, split, history, model.keras (no optimizer state),
#                       its evaluation on the run's test split and MODEL_CARD.md (tracked in git)
#   edge/reference/model_int8.tflite   the INT8 file, package data of `edge` (models/reference
#                       links to it: one copy in git)
# Usage: tools/release_reference.sh RUN_DIR [--replace]   (RUN_DIR: a finished training run)
set -euo pipefail
cd "$(dirname "$0")/.."
run=${1:?usage: tools/release_reference.sh RUN_DIR [--replace]}
ref=models/reference
packaged=edge/reference/model_int8.tflite
[ -f "$run/run.json" ] && [ -f "$run/model.keras" ] || { echo "error: $run is not a finished training run" >&2; exit 2; }
if [ -e "$ref/model.keras" ] && [ "${2:-}" != "--replace" ]; then
  echo "error: $ref already holds a release; replace it only with a measured improvement (--replace)" >&2; exit 2
fi
rm -rf "$ref" && mkdir -p "$ref" "$(dirname "$packaged")"
for f in config.json run.json metrics.json split.csv history.csv history.json history.png; do cp "$run/$f" "$ref/"; done
.venv/bin/python - "$run" "$ref" <<'PY'
"""model.keras without optimizer state (a third of the size); data folders as ../shared/data/NAME,
relative to the repository root, so any checkout with ../shared beside it can evaluate the release."""
import json, sys
from pathlib import Path
import keras
import artery_edge.trainer.model  # noqa: F401  registers the custom layers and loss
run, ref = Path(sys.argv[1]), Path(sys.argv[2])
config = json.loads((ref / "config.json").read_text())
shared = (Path.cwd().parent / "shared" / "data").resolve()
config["data_dirs"] = [f"../shared/data/{Path(d).name}" if Path(d).resolve().parent == shared else d
                       for d in config["data_dirs"]]
config["output_dir"] = "models"
(ref / "config.json").write_text(json.dumps(config, indent=2))
keras.models.load_model(run / "model.keras", compile=False).save(ref / "model.keras")
PY
.venv/bin/artery-edge convert "$ref" --quantize int8
.venv/bin/artery-edge evaluate --run "$ref" --prevalence 0.2
rm -f "$ref"/evaluation/predictions.csv "$ref"/evaluation/scatter_*.png  # size: the card and metrics carry the figures
{ cat "$ref/evaluation/MODEL_CARD.md"; cat <<'CARD'

## Release
- This is artery-edge's released reference model: `models/reference/` in the repository, and its
  INT8 file is package data of the `edge` package (`pip install "artery-edge[edge]"`, then
  `artery-edge infer --image x.png` uses it when no `--model` is given).
- Research tool, not a diagnostic device: the figures above were measured on P-ADSD's published
  `validation-*` files (the run's test split, never used for training, early stopping, the
  temperature or the threshold, but the recipe was chosen on them); P-ADSD's own test split was not
  used. They say nothing about other sites, scanners or patients (see `xca-site-b` and the
  adaptation guide for another hospital).
- Data licence and citation: P-ADSD (Ovalle-Magallanes E., Avina-Cervantes J.G., Cruz-Aceves I.,
  Ruiz-Pinales J., "LRSE-Net: Lightweight Residual Squeeze-and-Excitation Network for stenosis
  detection in X-ray Coronary Angiography", Electronics 11(21):3570, 2022,
  doi:10.3390/electronics11213570), cut from ADSD (Danilov V. et al., "Angiographic dataset for
  stenosis detection", Mendeley Data, 2021, doi:10.17632/ydrm75xywg.2; frames under CC BY 4.0;
  Danilov V.V. et al., Sci Rep 11:7582, 2021, doi:10.1038/s41598-021-87174-2). The LRSE-Net
  repository states no licence for the patches and asks for these citations. The model's code is
  Apache-2.0.
CARD
} > "$ref/MODEL_CARD.md"
rm "$ref/evaluation/MODEL_CARD.md"  # one card: the release's, above
mv "$ref/model_int8.tflite" "$packaged"
ln -s ../../edge/reference/model_int8.tflite "$ref/model_int8.tflite"
du -sh "$ref" "$packaged"
echo "released $run as $ref (and $packaged)"
