"""Fixtures for tests/probes/probe_outputs.py (issue 22's probe table, tests/probes.md): runs r1 (a
converted tiny run: float32 + dynamic), r2 (another model.keras), r3 (hostile class folder names),
r4 (a model.keras of another input size), tiny/foreign/swapped/evil .tflite files, odd file names.

usage: python tests/probes/probe_fixtures.py RUN DATA FIXTURES   (RUN trained on DATA, 32 px, converted)
"""
import csv
import json
import os
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np  # noqa: E402
from PIL import Image, ImageOps  # noqa: E402

from artery_edge.edge.metadata import ModelMetadata, sha256_of_file  # noqa: E402
from tests.tflite_builder import build_tiny_classifier  # noqa: E402

SRC, DATA, FX = (Path(a) for a in sys.argv[1:4])
FX.mkdir()
ignore = shutil.ignore_patterns("evaluation*", "explain*", "backup", "*_layer_report*")
shutil.copytree(SRC, FX / "r1", ignore=ignore)
sha = sha256_of_file(FX / "r1" / "model.keras")

import keras  # noqa: E402

import artery_edge.trainer.model  # noqa: E402,F401
from artery_edge.trainer.config import TrainConfig  # noqa: E402

# r2: same classes and size, another model.keras (weights perturbed)
shutil.copytree(FX / "r1", FX / "r2", ignore=shutil.ignore_patterns("*.tflite"))
model = keras.models.load_model(FX / "r2" / "model.keras", compile=False)
layer = model.get_layer("classifier")
layer.set_weights([w + 0.01 for w in layer.get_weights()])
(FX / "r2" / "model.keras").unlink()
model.save(FX / "r2" / "model.keras")

# r4: run.json says 32 px, model.keras takes 48 px
shutil.copytree(FX / "r1", FX / "r4", ignore=shutil.ignore_patterns("*.tflite"))
other = artery_edge.trainer.model.build_model(2, TrainConfig(data_dirs=["x"], image_size=48, alpha=0.35, weights="none"))
(FX / "r4" / "model.keras").unlink()
other.save(FX / "r4" / "model.keras")

# r3: hostile class folder names
names = {"Healthy": "<img src=x onerror=alert(1)>", "Unhealthy": "Un|healthy\n$\\foo$"}
data3 = FX / "data3"
for old, new in names.items():
    shutil.copytree(DATA / old, data3 / new)
shutil.copytree(FX / "r1", FX / "r3", ignore=shutil.ignore_patterns("*.tflite"))
run = json.loads((FX / "r3" / "run.json").read_text())
run["class_names"] = [names[c] for c in run["class_names"]]
(FX / "r3" / "run.json").write_text(json.dumps(run))
config = json.loads((FX / "r3" / "config.json").read_text())
config["data_dirs"] = [str(data3)]
(FX / "r3" / "config.json").write_text(json.dumps(config))
with open(FX / "r1" / "split.csv", newline="") as handle:
    rows = list(csv.DictReader(handle))
with open(FX / "r3" / "split.csv", "w", newline="") as handle:
    writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
    writer.writeheader()
    for row in rows:
        cls = row["class"]
        writer.writerow({**row, "class": names[cls], "file": names[cls] + row["file"][len(cls):]})

# images
imgs = FX / "imgs"
imgs.mkdir()
pngs = sorted((DATA / "Unhealthy").glob("*.png"))
shutil.copy(pngs[0], imgs / "a.png")
shutil.copy(pngs[1], imgs / "b.png")
for sub in ("a", "b"):
    (FX / "same" / sub).mkdir(parents=True)
shutil.copy(pngs[2], FX / "same" / "a" / "x.png")
shutil.copy(pngs[3], FX / "same" / "b" / "x.png")
(FX / "odd").mkdir()
for i, name in enumerate(["b\nerror: c.png", "d\re.png", "\x1b[2Jf.png"]):
    shutil.copy(pngs[4 + i], FX / "odd" / name)
(FX / "odd_bad").mkdir()
(FX / "odd_bad" / "x\nerror: y.png").write_bytes(b"not an image")
(FX / "exif").mkdir()
pixels = np.asarray(Image.open(pngs[8]).convert("RGB")).copy()
pixels = np.concatenate([pixels, pixels[:, :16] // 2], axis=1)  # 32 x 48: not square
exif = Image.Exif()
exif[0x0112] = 6
Image.fromarray(pixels).save(FX / "exif" / "rot6.jpg", exif=exif.tobytes(), quality=95)
upright = ImageOps.exif_transpose(Image.open(FX / "exif" / "rot6.jpg")).convert("RGB")
upright.save(FX / "exif" / "upright.png")

# .tflite files
build_tiny_classifier(FX / "tiny.tflite", "uint8", metadata=ModelMetadata(
    labels=["Healthy", "Unhealthy"], input_size=8, precision="int8"))
build_tiny_classifier(FX / "nometa.tflite", size=32)
build_tiny_classifier(FX / "foreign.tflite", size=32, metadata=ModelMetadata(
    labels=["Healthy", "Unhealthy"], input_size=32, precision="float32", model_sha256="b" * 64))
build_tiny_classifier(FX / "swapped.tflite", size=32, metadata=ModelMetadata(
    labels=["Unhealthy", "Healthy"], input_size=32, precision="float32", model_sha256=sha))
build_tiny_classifier(FX / "evil.tflite", metadata=ModelMetadata(
    labels=["Healthy\nfake line", "Unhealthy\x1b[31m"], input_size=8, precision="float32\nlabels: spoof",
    artery_edge_version="1\nops: none", created="x\ry"))
build_tiny_classifier(FX / "nometa_labels.tflite", metadata=ModelMetadata(
    labels=["Healthy", "Unhealthy"], input_size=8, precision="float32"))
print("fixtures in", FX)
