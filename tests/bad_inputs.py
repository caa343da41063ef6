"""Helpers of the bad-input tests (TF-free): a tiny int8 classifier with our metadata, PNG files,
and the command run as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from artery_edge.edge import ModelMetadata
from tests.tflite_builder import build_tiny_classifier

LABELS = ["Healthy", "Unhealthy"]


@pytest.fixture
def model(tmp_path) -> Path:
    return build_tiny_classifier(tmp_path / "tiny.tflite", "uint8",
                                 metadata=ModelMetadata(labels=LABELS, input_size=8, precision="int8"))


def save_png(path: Path, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (12, 12, 3), dtype=np.uint8)).save(path, "PNG")
    return path


def cli(*args: str) -> subprocess.CompletedProcess:
    """The installed entry point as a user runs it (usage errors go through ``main``)."""
    return subprocess.run([sys.executable, "-m", "artery_edge.cli", *args], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONIOENCODING": "utf-8"})


def one_error_line(result) -> str:
    stderr = result.stderr if isinstance(result.stderr, str) else ""
    lines = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in result.stdout + stderr, stderr
    return lines[0]
