"""Fuzz suite: mutated images and mutated .tflite files, TF-free.

Property: every case ends as a classified image (finite probabilities), a per-file error
or one `error:` line; never a traceback, a hang, a native crash or a NaN reported as a class.

CI runs a fixed, reproducible set (Hypothesis ``derandomize``); a longer random run:
``ARTERY_EDGE_FUZZ=2000 pytest -s tests/test_fuzz.py`` (examples per property). ``-s``
prints the counts of each property (cases / classified / clean errors / failures).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from typer.testing import CliRunner

from artery_edge.cli import app
from artery_edge.edge import ModelMetadata
from artery_edge.edge.errors import ImageError
from artery_edge.edge.imaging import load_image
from tests.tflite_builder import build_tiny_classifier

LONG = int(os.environ.get("ARTERY_EDGE_FUZZ", "0"))
EXAMPLES = LONG or 150
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=not LONG, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
# Every format Pillow can write here, saved under an image name: the claimed ones must decode,
# the others must be refused by content, and any mutation of either must end cleanly.
FORMATS = ["PNG", "JPEG", "BMP", "GIF", "TIFF", "WEBP", "ICO", "PPM", "TGA", "PCX", "SGI", "QOI", "DDS", "MSP",
           "IM", "SPIDER", "XBM", "EPS", "PDF", "JPEG2000", "BLP", "ICNS", "DIB", "PALM"]
COUNTS: dict[str, Counter] = {}


def seed_image(fmt: str, mode: str, side: int) -> bytes:
    rng = np.random.default_rng(side)
    image = Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).convert(mode)
    buffer = io.BytesIO()
    try:
        image.save(buffer, fmt)
    except (OSError, ValueError, KeyError):  # the format cannot hold this mode: plain RGB instead
        buffer = io.BytesIO()
        try:
            image.convert("RGB").save(buffer, fmt)
        except (OSError, ValueError, KeyError):
            Image.new("1", (side, side)).save(buffer := io.BytesIO(), "PNG")
    return buffer.getvalue()


def mutate(data: bytes, kind: str, position: float, value: int, length: int) -> bytes:
    """One of: byte flip, truncation, header overwrite, inserted garbage, repeated chunk."""
    data = bytearray(data)
    at = min(int(position * len(data)), max(len(data) - 1, 0))
    if kind == "flip":
        data[at] ^= 1 << (value % 8)
    elif kind == "truncate":
        del data[at:]
    elif kind == "header":
        data[: min(length, len(data))] = bytes((value + i * 37) % 256 for i in range(min(length, len(data))))
    elif kind == "insert":
        data[at:at] = bytes((value * (i + 1)) % 256 for i in range(length))
    elif kind == "repeat":
        data[at:at] = data[at: at + length] * 4
    return bytes(data)


mutations = st.tuples(
    st.sampled_from(FORMATS), st.sampled_from(["RGB", "L", "P", "RGBA", "1", "I;16", "CMYK"]),
    st.integers(1, 40), st.sampled_from(["none", "flip", "truncate", "header", "insert", "repeat"]),
    st.floats(0, 1), st.integers(0, 255), st.integers(1, 64),
)


@pytest.fixture(scope="module", autouse=True)
def report_counts():
    yield
    for name, counts in COUNTS.items():
        print(f"fuzz {name}: {sum(counts.values())} cases, " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))


def record(name: str, outcome: str) -> None:
    COUNTS.setdefault(name, Counter())[outcome] += 1


@FUZZ
@given(mutations)
def test_any_mutated_image_decodes_or_is_a_per_file_error(tmp_path_factory, case):
    fmt, mode, side, kind, position, value, length = case
    path = tmp_path_factory.mktemp("img") / "x.png"
    path.write_bytes(mutate(seed_image(fmt, mode, side), kind, position, value, length))
    try:
        pixels = load_image(path, 16)
    except ImageError as exc:
        assert "\n" not in str(exc)
        record("load_image", "clean error")
        return
    assert pixels.shape == (16, 16, 3) and pixels.dtype == np.uint8
    record("load_image", "decoded")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    return build_tiny_classifier(tmp_path_factory.mktemp("model") / "tiny.tflite", "uint8",
                                 metadata=ModelMetadata(labels=["Healthy", "Unhealthy"], input_size=8, precision="int8"))


@settings(FUZZ, max_examples=max(EXAMPLES // 10, 10))
@given(st.lists(mutations, min_size=1, max_size=12))
def test_infer_on_a_folder_of_mutated_images_ends_cleanly(tmp_path_factory, tiny_model, cases):
    folder = tmp_path_factory.mktemp("folder")
    for i, (fmt, mode, side, kind, position, value, length) in enumerate(cases):
        (folder / f"{i:02d}.png").write_bytes(mutate(seed_image(fmt, mode, side), kind, position, value, length))
    result = CliRunner().invoke(app, ["infer", "--model", str(tiny_model), "--image", str(folder), "--json"])
    assert result.exit_code in (0, 1) and result.exception is None or isinstance(result.exception, SystemExit)
    report = json.loads(result.stdout)
    assert len(report["results"]) == len(cases)
    for row in report["results"]:
        assert (row["label"] is None) != (row["error"] is None), row
        if row["label"] is not None:
            assert all(np.isfinite(row[f"p_{label}"]) for label in ("Healthy", "Unhealthy"))
        record("infer folder", "classified" if row["label"] else "clean error")


@settings(FUZZ, max_examples=max(EXAMPLES // 10, 10))
@given(st.lists(mutations, min_size=3, max_size=12))
def test_the_training_scan_skips_and_reports_mutated_images(tmp_path_factory, cases):
    from artery_edge.trainer.samples import DataError
    from artery_edge.trainer.scan import scan_dataset

    root = tmp_path_factory.mktemp("dataset")
    for i, (fmt, mode, side, kind, position, value, length) in enumerate(cases):
        folder = root / ("Healthy" if i % 2 else "Unhealthy")
        folder.mkdir(exist_ok=True)
        (folder / f"{i:02d}.png").write_bytes(mutate(seed_image(fmt, mode, side), kind, position, value, length))
    try:
        scanned = scan_dataset(root)
    except DataError as exc:
        assert "\n" not in str(exc)
        record("training scan", "clean error (dataset)")
        return
    assert len(scanned.samples) + len(scanned.skipped) == len(cases)
    record("training scan", "scanned")


MODEL_WORKER = r"""
import json, sys
import numpy as np
from artery_edge.edge import Classifier
from artery_edge.edge.errors import EdgeError
image = np.random.default_rng(0).integers(0, 256, (12, 12, 3), dtype=np.uint8)
for line in sys.stdin:
    path = line.strip()
    try:
        p = Classifier(path).predict(image)
        finite = all(np.isfinite(v) for v in p.probabilities.values())
        outcome = "classified" if finite and p.label else "NaN reported as a class"
    except EdgeError as exc:
        outcome = "clean error" if "\n" not in str(exc) else "multi-line error"
    except Exception as exc:
        outcome = f"uncaught {type(exc).__name__}: {str(exc)[:200]}"
    print(json.dumps([path, outcome]), flush=True)
"""


def mutate_model(data: bytes, rng: np.random.Generator) -> bytes:
    """Bit flips anywhere, truncation, or an edited metadata document."""
    kind = rng.choice(["flip", "flips", "truncate", "metadata"])
    data = bytearray(data)
    if kind == "flip":
        at = int(rng.integers(len(data)))
        data[at] ^= 1 << int(rng.integers(8))
    elif kind == "flips":
        for at in rng.integers(0, len(data), int(rng.integers(2, 20))):
            data[at] ^= 1 << int(rng.integers(8))
    elif kind == "truncate":
        del data[int(rng.integers(len(data))):]
    else:
        start = data.find(b'{"')
        end = data.find(b"}", start) + 1 if start >= 0 else -1
        if start >= 0 and end > start:
            junk = rng.choice([b'"labels": 5', b'"labels": ["A", "A"]', b'"input_size": "x"', b"\xff\xfe", b"[]", b"{"])
            middle = bytes(data[start:end]).replace(b'"labels": ["Healthy", "Unhealthy"]', junk)
            data[start:end] = middle[: end - start].ljust(end - start, b" ")
    return bytes(data)


def test_mutated_models_load_and_classify_or_fail_cleanly(tmp_path, tiny_model):
    """Each case runs in a worker process, so a native crash is seen (and named) instead of
    taking the suite down; a crashed worker is restarted on the remaining cases."""
    rng = np.random.default_rng(20261126 if not LONG else None)
    original = tiny_model.read_bytes()
    float_model = build_tiny_classifier(tmp_path / "float.tflite", "float32",
                                        metadata=ModelMetadata(labels=["Healthy", "Unhealthy"], input_size=8,
                                                               precision="float32")).read_bytes()
    paths = []
    for i in range(EXAMPLES):
        path = tmp_path / f"m{i:05d}.tflite"
        path.write_bytes(mutate_model(original if i % 2 else float_model, rng))
        paths.append(str(path))
    outcomes: dict[str, str] = {}
    pending = list(paths)
    while pending:
        worker = subprocess.run([sys.executable, "-c", MODEL_WORKER], input="\n".join(pending) + "\n",
                                capture_output=True, text=True, timeout=600)
        for line in worker.stdout.splitlines():
            path, outcome = json.loads(line)
            outcomes[path] = outcome
        pending = [p for p in pending if p not in outcomes]
        if pending:  # the worker died on pending[0]
            outcomes[pending.pop(0)] = f"native crash (exit {worker.returncode})"
    for outcome in outcomes.values():
        record("mutated .tflite", outcome)
    bad = {Path(p).name: o for p, o in outcomes.items() if o not in ("classified", "clean error")}
    assert not bad, bad
