"""Our converter vs Google's LiteRT Quantizer (formerly AI Edge Quantizer, hence AEQ in the
rows), side by side on one trained run.

Every path starts from the same run: ours from its Keras model (TFLiteConverter, with our
BN folding / weight rounding / float16 small weights kept float32), AEQ from our float32 .tflite
(AEQ quantizes .tflite files, no TensorFlow), calibrated on the same training images.
Each file gets the same metadata and runs through ``edge.Classifier`` on the run's test
split, compared with the Keras model's probabilities (same calibration temperature).

    .venv/bin/python studies/quantizer_side_by_side.py --run models/real-128-a1.0-ft20

Prints a Markdown table (``--json`` for the rows) and keeps the files in ``--out``. AEQ rows
include the float32 conversion they start from, in seconds and in our lines of code.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from artery_edge.edge.precisions import PRECISIONS  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def code_lines(*relative: str) -> int:
    """Non-blank, non-comment lines of our own modules a path needs."""
    total = 0
    for name in relative:
        for line in (ROOT / name).read_text().splitlines():
            stripped = line.strip()
            total += bool(stripped) and not stripped.startswith("#")
    return total


def ours(run: Path, precision: str, out: Path, **options) -> tuple[bytes, float]:
    from artery_edge.converters.options import ConvertOptions
    from artery_edge.converters.tflite import convert

    folder = Path(tempfile.mkdtemp(dir=out))
    start = time.perf_counter()
    convert(run, ConvertOptions([precision], folder, **options))
    return PRECISIONS[precision].file(folder).read_bytes(), time.perf_counter() - start


def aeq(float32_file: Path, recipe, calibration: list | None) -> tuple[bytes, float]:
    from litert_quantizer import quantizer

    start = time.perf_counter()
    q = quantizer.Quantizer(str(float32_file), recipe)
    result = q.calibrate({"serving_default": calibration}) if q.need_calibration else None
    model = q.quantize(result, enable_progress_report=False).quantized_model
    return bytes(model), time.perf_counter() - start


def static_recipe(algorithm: str = "min_max_uniform_quantize", float_regex: str = "", dense_only: bool = False) -> list:
    """AEQ static INT8 (int8 weights and activations) for every supported op; ``dense_only``:
    ``algorithm`` on the dense layer and min-max elsewhere (GPTQ covers only FULLY_CONNECTED);
    ops whose output tensor name matches ``float_regex`` stay float."""
    from litert_quantizer import recipe_manager
    from litert_quantizer.qtyping import TFLOperationName

    manager = recipe_manager.RecipeManager()
    manager.add_static_config(".*", TFLOperationName.ALL_SUPPORTED, 8, 8,
                              algorithm_key="min_max_uniform_quantize" if dense_only else algorithm)
    if dense_only:
        manager.add_static_config(".*", TFLOperationName.FULLY_CONNECTED, 8, 8, algorithm_key=algorithm)
    if float_regex:
        manager.add_quantization_config(float_regex, TFLOperationName.ALL_SUPPORTED, algorithm_key="no_quantize")
    return manager.get_quantization_recipe()


def float16_recipe() -> list:
    from litert_quantizer import recipe_manager
    from litert_quantizer.qtyping import TFLOperationName

    manager = recipe_manager.RecipeManager()
    manager.add_weight_only_config(".*", TFLOperationName.ALL_SUPPORTED, 16, algorithm_key="float_casting")
    return manager.get_quantization_recipe()


def with_metadata(model: bytes, metadata, precision: str, tool: str) -> bytes:
    from artery_edge.converters.metadata_writer import embed_metadata

    return embed_metadata(model, replace(metadata, precision=precision, quantization={"tool": tool}))


def measure(path: Path, samples, labels: np.ndarray, keras_p: np.ndarray, positive: int, repeats: int) -> dict:
    from artery_edge.edge.bench import benchmark_model
    from artery_edge.edge.classifier import Classifier

    classifier = Classifier(path, threads=2)
    p = np.array([classifier.predict(s.path).probabilities[classifier.labels[positive]] for s in samples])
    latency = benchmark_model(path, runs=repeats, threads=2)
    predicted, reference = p >= 0.5, keras_p >= 0.5
    return {"agreement": float((predicted == reference).mean()), "mean_dp": float(np.abs(p - keras_p).mean()),
            "max_dp": float(np.abs(p - keras_p).max()), "accuracy": float((predicted == (labels == positive)).mean()),
            "mb": path.stat().st_size / 1e6, "invoke_ms": latency["p50_ms"],
            "input": np.dtype(classifier.input_dtype).name}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--count", type=int, default=200, help="calibration images (training split)")
    parser.add_argument("--repeats", type=int, default=200, help="timed invokes per file (median)")
    parser.add_argument("--limit", type=int, default=0, help="test images used (0: all)")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from artery_edge.converters.tflite import ConversionSource, build_metadata, build_calibration_images, graph_threshold
    from artery_edge.evaluation.evaluate import keras_probabilities, load_keras
    from artery_edge.trainer.samples import subset
    from artery_edge.trainer.scan import readable
    from artery_edge.edge.decision import positive_index
    from artery_edge.trainer.runs import load_run

    out = args.out or Path(tempfile.mkdtemp(prefix="side-by-side-"))
    out.mkdir(parents=True, exist_ok=True)
    run = load_run(args.run)
    samples, _ = readable(subset(run.split(), "test"))
    samples = samples[: args.limit] if args.limit else samples
    labels = np.array([s.label for s in samples])
    positive = positive_index(run.class_names)
    keras_p = keras_probabilities(load_keras(run), run.image_size, samples)[:, positive]

    source = ConversionSource.resolve(args.run)
    metadata = replace(build_metadata(source, run.image_size, run.class_names), temperature=run.temperature,
                       threshold=graph_threshold(run, run.temperature))
    images = build_calibration_images(source, args.count, run.image_size)
    calibration = [{"image": image[np.newaxis].astype(np.float32)} for image in images]
    calibration[0]["image"][0, 0, 0], calibration[0]["image"][0, 0, 1] = 0, 255  # input range exactly 0..255

    float32_bytes, float32_seconds = ours(args.run, "float32", out)
    float32_file = out / "ours_float32.tflite"
    float32_file.write_bytes(float32_bytes)
    stem = ".*(rescale|Conv1_|expanded_conv_).*"
    core = ["converters/tflite.py", "converters/options.py", "converters/presets.py"]
    ours_int8 = [*core, "converters/bn_folding.py", "converters/weight_rounding.py"]
    paths = {
        "ours float32": (lambda: (float32_bytes, float32_seconds), core),
        "ours float16 (small weights kept float32)": (lambda: ours(args.run, "float16", out),
                                                      [*core, "converters/float16_keep.py"]),
        "ours float16 (plain converter)": (lambda: ours(args.run, "float16", out, float16_keep_below=0), core),
        "AEQ float16 weight-only (float_casting)": (lambda: aeq(float32_file, float16_recipe(), None), []),
        "ours dynamic-range (converter)": (lambda: ours(args.run, "dynamic", out), core),
        "AEQ dynamic_wi8_afp32": (lambda: aeq(float32_file, __import__(
            "litert_quantizer.recipe", fromlist=["x"]).dynamic_wi8_afp32(), None), []),
        "ours int8 (BN folding + calibrated rounding)": (lambda: ours(args.run, "int8", out), ours_int8),
        "ours int8 (BN folding, nearest rounding)": (lambda: ours(args.run, "int8", out, weight_rounding="nearest"),
                                                     [*core, "converters/bn_folding.py"]),
        "AEQ static_wi8_ai8 (min-max)": (lambda: aeq(float32_file, static_recipe(), calibration), []),
        "AEQ static int8, GPTQ on the dense layer": (lambda: aeq(float32_file, static_recipe("GPTQ", dense_only=True), calibration), []),
        "AEQ static int8, MSE weights": (lambda: aeq(float32_file, static_recipe("MSE"), calibration), []),
        "AEQ static int8, stem in float": (lambda: aeq(float32_file, static_recipe(float_regex=stem), calibration), []),
    }
    rows = []
    for name, (build, modules) in paths.items():
        try:
            model, seconds = build()
        except Exception as exc:  # a recipe the library refuses for this model is a row, not a crash
            rows.append({"path": name, "error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"})
            print(f"{name}: {rows[-1]['error']}", flush=True)
            continue
        file = out / (name.split(" (")[0].replace(" ", "_").replace(",", "") + ".tflite")
        precision = "int8" if "int8" in name or "wi8" in name else "float16" if "16" in name else "float32"
        file.write_bytes(model if name.startswith("ours") else with_metadata(model, metadata, precision, "aeq"))
        if name.startswith("AEQ"):  # AEQ starts from our float32 file: its conversion counts, as do its lines
            seconds, modules = seconds + float32_seconds, core
        row = {"path": name, "convert_s": round(seconds, 1),
               "our_lines": code_lines(*modules),  # the metadata writer serves every path alike
               **measure(file, samples, labels, keras_p, positive, args.repeats)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"\n{len(samples)} test images of {args.run}; Keras accuracy "
          f"{float(((keras_p >= 0.5) == (labels == positive)).mean()):.4f}\n")
    print("| path | labels = Keras | mean / max abs dp | accuracy | MB | invoke p50 (ms) | input | convert (s) | our lines |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if "error" in r:
            print(f"| {r['path']} | {r['error']} | | | | | | | |")
            continue
        print(f"| {r['path']} | {r['agreement']:.4f} | {r['mean_dp']:.4f} / {r['max_dp']:.3f} | {r['accuracy']:.4f} | "
              f"{r['mb']:.2f} | {r['invoke_ms']:.2f} | {r['input']} | {r['convert_s']} | {r['our_lines']} |")


if __name__ == "__main__":
    main()
