"""Edge runtime figures: cold start vs TensorFlow, Classifier overhead, precision side by side.

    python benchmarks/edge_latency.py --run models/real-128-a1.0 --data ../shared/data/stenosis-patches

1. Cold start: whole-process wall time and peak RSS of `artery-edge infer --model M --image one.png`
   versus the same prediction through Keras/TensorFlow (KerasPredictor), medians of --repeats.
2. Per-image latency of the full Classifier path (decode, resize, quantize, invoke, dequantize)
   versus bare interpreter.invoke() on a prepared tensor, alternating, medians and ratio; also
   Classifier on an already decoded frame (the camera path: resize, convert, invoke, decode).
3. int8 / float16 / float32 invoke latency side by side, and images/s over a folder of --folder-count files.
Run it with the full environment's Python; the edge path only imports the edge runtime.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from artery_edge.edge.precisions import PRECISIONS, model_files, precision_of_file

SMALLEST = next(reversed(PRECISIONS.values()))  # the registry ends with full integer, the device's model


def rss_of(command: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one child process, measured alone through wait4."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    _, status, usage = os.wait4(process.pid, 0)
    if status != 0:
        raise RuntimeError(f"{command} failed with status {status}")
    return time.perf_counter() - start, usage.ru_maxrss / 1024


def cold_start(run: Path, image: Path, repeats: int) -> dict:
    cli = str(Path(sys.executable).with_name("artery-edge"))
    edge_cmd = [cli, "infer", "--model", str(SMALLEST.file(run)), "--image", str(image)]
    keras_cmd = [sys.executable, "-c",
                 "import sys; from artery_edge.trainer.predict import KerasPredictor; "
                 f"print(KerasPredictor.from_run({str(run)!r}).predict({str(image)!r}))"]
    edge, tf = [], []
    for _ in range(repeats):
        edge.append(rss_of(edge_cmd))
        tf.append(rss_of(keras_cmd))
    e_wall, e_rss = statistics.median(w for w, _ in edge), max(r for _, r in edge)
    t_wall, t_rss = statistics.median(w for w, _ in tf), max(r for _, r in tf)
    return {"edge_wall_s": round(e_wall, 3), "edge_peak_rss_mb": round(e_rss, 1),
            "tensorflow_wall_s": round(t_wall, 3), "tensorflow_peak_rss_mb": round(t_rss, 1),
            "wall_ratio_edge_to_tf": round(e_wall / t_wall, 3), "rss_ratio_edge_to_tf": round(e_rss / t_rss, 3)}


def classifier_overhead(model: Path, images: list[Path], rounds: int, threads: int) -> dict:
    from artery_edge.edge import Classifier

    import numpy as np
    from PIL import Image

    clf = Classifier(model, threads=threads)
    tensors = [clf.input_tensor(clf.preprocess(p)) for p in images]
    frames = [np.asarray(Image.open(p).convert("RGB")) for p in images]  # decoded, native size
    for t in tensors[:5]:
        clf.invoke(t)
    full, frame, bare = [], [], []
    for _ in range(rounds):
        for path, pixels, tensor in zip(images, frames, tensors):
            start = time.perf_counter()
            clf.predict(path)
            full.append(time.perf_counter() - start)
            start = time.perf_counter()
            clf.predict(pixels)
            frame.append(time.perf_counter() - start)
            start = time.perf_counter()
            clf.interpreter.set_tensor(clf._input["index"], tensor)
            clf.interpreter.invoke()
            clf.interpreter.get_tensor(clf._output["index"])
            bare.append(time.perf_counter() - start)
    f, a, b = (statistics.median(v) * 1000 for v in (full, frame, bare))
    return {"classifier_file_ms": round(f, 3), "classifier_frame_ms": round(a, 3), "bare_invoke_ms": round(b, 3),
            "ratio_file": round(f / b, 3), "ratio_frame": round(a / b, 3)}


def precisions_side_by_side(run: Path, images: list[Path], folder: list[Path], rounds: int, threads: int) -> dict:
    from artery_edge.edge import Classifier
    from artery_edge.edge.batch import classify_files

    classifiers = {precision_of_file(f): Classifier(f, threads=threads) for f in model_files(run)}
    tensors = {p: [c.input_tensor(c.preprocess(i)) for i in images] for p, c in classifiers.items()}
    times = {p: [] for p in classifiers}
    for _ in range(rounds):
        for p, c in classifiers.items():  # interleaved: same machine load for all three
            for t in tensors[p]:
                start = time.perf_counter()
                c.invoke(t)
                times[p].append(time.perf_counter() - start)
    result = {}
    for p, c in classifiers.items():
        start = time.perf_counter()
        outcomes = list(classify_files(c, folder))
        seconds = time.perf_counter() - start
        result[p] = {"invoke_p50_ms": round(statistics.median(times[p]) * 1000, 3),
                     "folder_images_per_s": round(len(outcomes) / seconds, 1),
                     "size_mb": round(c.model_path.stat().st_size / 1e6, 2)}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="run dir with model.keras and its converted .tflite files")
    parser.add_argument("--data", type=Path, required=True, help="class-folder images to time on")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--folder-count", type=int, default=500)
    args = parser.parse_args()

    files = sorted(args.data.rglob("*.png"))
    images, folder = files[:: max(1, len(files) // 50)][:50], files[:: max(1, len(files) // args.folder_count)][: args.folder_count]
    report = {
        "cold_start": cold_start(args.run, images[0], args.repeats),
        f"classifier_overhead_{SMALLEST.name}": classifier_overhead(SMALLEST.file(args.run), images, args.rounds,
                                                                     args.threads),
        "precisions": precisions_side_by_side(args.run, images, folder, args.rounds, args.threads),
        "threads": args.threads, "folder_count": len(folder),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
