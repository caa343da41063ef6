"""Latency benchmark of one .tflite model: size, load time, latency percentiles, peak RSS.

Run as ``python -m artery_edge.edge.bench MODEL`` so each model is measured in a fresh process and
its peak RSS is its own; ``benchmark_models`` does that for several models.
"""

from __future__ import annotations

import json
import resource
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from artery_edge.edge.classifier import Classifier
from artery_edge.edge.errors import EdgeError, OptionError


def peak_rss_mb() -> float:
    """Peak resident set size of this process (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def percentile_summary(samples_ms: Sequence[float]) -> dict[str, float]:
    values = np.asarray(samples_ms)
    return {
        "p50_ms": round(float(np.percentile(values, 50)), 4),
        "p95_ms": round(float(np.percentile(values, 95)), 4),
        "mean_ms": round(float(values.mean()), 4),
    }


FRAME_SIDE = 512  # a whole-frame model's pipeline is timed on a frame of this side (ARCADE's)


def open_model(model: Path, labels: Optional[list[str]], threads: Optional[int]) -> Classifier:
    """A classifier, or a :class:`edge.scanner.FrameScanner` for a whole-frame model."""
    from artery_edge.edge.metadata import read_metadata
    from artery_edge.edge.scanner import FrameScanner

    metadata = read_metadata(model)
    if metadata is not None and metadata.task == "map":
        return FrameScanner(model, threads=threads)
    return Classifier(model, labels=labels, threads=threads)


def benchmark_model(
    model: Path, runs: int = 100, warmup: int = 10, threads: Optional[int] = None, labels: Optional[list[str]] = None,
    frame: Optional[Path] = None,
) -> dict:
    """Measure bare ``invoke`` on a prepared tensor and the full path (decode of a ready array,
    resize, invoke, decoding) on a random image, or for a whole-frame model on ``frame`` (a
    512 x 512 random frame without one: its noise makes the map, and so the decoding, busier)."""
    start = time.perf_counter()
    classifier = open_model(model, labels, threads)
    load_ms = (time.perf_counter() - start) * 1000
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (classifier.input_size, classifier.input_size, 3), dtype=np.uint8)
    tensor = classifier.input_tensor(image)
    for _ in range(warmup):
        classifier.invoke(tensor)
    invoke_ms = []
    for _ in range(runs):
        tick = time.perf_counter()
        classifier.invoke(tensor)
        invoke_ms.append((time.perf_counter() - tick) * 1000)
    if getattr(classifier, "scan", None):
        from artery_edge.edge.imaging import rgb_image

        whole = rgb_image(frame) if frame else rng.integers(0, 256, (FRAME_SIDE, FRAME_SIDE, 3), dtype=np.uint8)
        pipeline_ms = [classifier.scan(whole).total_ms for _ in range(max(1, runs // 2))]
    else:
        pipeline_ms = [classifier.predict(image).total_ms for _ in range(max(1, runs // 2))]
    latency = percentile_summary(invoke_ms)
    return {
        "model": str(model),
        "precision": classifier.precision,
        "input_dtype": str(classifier.input_dtype),
        "input_size": classifier.input_size,
        "size_bytes": Path(model).stat().st_size,
        "backend": classifier.backend,
        "threads": threads,
        "load_ms": round(load_ms, 2),
        "runs": runs,
        **latency,
        "throughput_ips": round(1000.0 / latency["mean_ms"], 1) if latency["mean_ms"] else None,
        "pipeline_p50_ms": percentile_summary(pipeline_ms)["p50_ms"],
        "task": getattr(classifier.metadata, "task", "classify"),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


def benchmark_models(
    models: Sequence[Path], runs: int = 100, warmup: int = 10, threads: Optional[int] = None,
    labels: Optional[list[str]] = None, frame: Optional[Path] = None,
) -> list[dict]:
    """Benchmark each model in its own subprocess so peak RSS is per model; ``frame`` is refused
    when no model is a whole-frame one (it would be ignored)."""
    from artery_edge.edge.metadata import read_metadata

    if frame is not None and not any(getattr(read_metadata(m), "task", "classify") == "map" for m in models):
        raise OptionError("--frame applies to whole-frame models only (it times their scan): "
                          "leave it out for a patch classifier")
    results = []
    for model in models:
        command = [sys.executable, "-m", "artery_edge.edge.bench", str(model), "--runs", str(runs), "--warmup", str(warmup)]
        if frame:
            command += ["--frame", str(frame)]
        if threads:
            command += ["--threads", str(threads)]
        if labels:
            command += ["--labels", ",".join(labels)]
        code, stdout, stderr = run_child(command)
        if code != 0:
            lines = [line for line in stderr.strip().splitlines() if line.startswith("error:")]
            raise EdgeError(lines[-1][len("error: "):] if lines else f"{model}: benchmark failed")
        results.append(json.loads(stdout))
    return results


def _interrupted(signum, frame) -> None:
    raise KeyboardInterrupt


def run_child(command: Sequence[str]) -> tuple[int, str, str]:
    """Run a measuring child; if this process is interrupted or sent SIGTERM, the child is
    killed too instead of running on at full CPU."""
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupted) if in_main_thread else None
    try:
        stdout, stderr = child.communicate()
        return child.returncode, stdout, stderr
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)
        if child.poll() is None:
            child.kill()
            child.wait()


def _main(argv: Sequence[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="benchmark one .tflite model (JSON on stdout)")
    parser.add_argument("model", type=Path)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--labels", default=None)
    parser.add_argument("--frame", type=Path, default=None)
    args = parser.parse_args(argv)
    try:
        labels = args.labels.split(",") if args.labels else None
        print(json.dumps(benchmark_model(args.model, args.runs, args.warmup, args.threads, labels, args.frame)))
    except EdgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
