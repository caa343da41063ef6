"""Shared fixtures: synthetic datasets in tmp dirs, one tiny trained run per session."""

from __future__ import annotations

import functools
import importlib.util
import os
import re
from pathlib import Path

import pytest

from edge.precisions import PRECISIONS

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
REAL_DATA = SHARED / "data" / "stenosis-patches"
WEIGHTS_035 = SHARED / "weights" / "mobilenet_v2_0.35_224_no_top.h5"
HAS_TF = importlib.util.find_spec("tensorflow") is not None
# Seeds the models trained in the suite; the parity bounds must hold for any value
# (e.g. `ARTERY_EDGE_TEST_SEED=7 pytest -m parity`).
TEST_SEED = int(os.environ.get("ARTERY_EDGE_TEST_SEED", "42"))

# A test module that skips as a whole without the train (or quantize) extra says so on its first
# lines: `pytest.importorskip("tensorflow", reason="... (train extra)")`. Its tests carry the
# `tf` marker, so the TensorFlow-free set is `pytest -m "not tf"` (Makefile: test-edge).
NEEDS_TRAIN_EXTRA = re.compile(r"^pytest\.importorskip\(.*\((train|quantize) extra\)", re.M)


@functools.cache
def needs_train_extra(module: Path) -> bool:
    return bool(NEEDS_TRAIN_EXTRA.search(module.read_text()))


def pytest_collection_modifyitems(items) -> None:
    for item in items:
        if needs_train_extra(item.path):
            item.add_marker(pytest.mark.tf)


def needs_shared(present: bool, reason: str):
    """A test that needs ../shared: skipped without it, and marked `shared` (`pytest -m shared`)."""
    def apply(test):
        return pytest.mark.shared(pytest.mark.skipif(not present, reason=reason)(test))

    return apply


needs_real_data = needs_shared(REAL_DATA.is_dir(), f"real data not found at {REAL_DATA} (../shared is absent)")
needs_imagenet = needs_shared(
    WEIGHTS_035.is_file(), f"ImageNet weights not found at {WEIGHTS_035}: a random-init tiny model is not accurate enough")


def tiny_weights() -> str:
    """ImageNet alpha-0.35 weights from ../shared when present, else random init."""
    return str(WEIGHTS_035) if WEIGHTS_035.is_file() else "none"


@pytest.fixture(scope="session")
def synthetic_dir(tmp_path_factory) -> Path:
    from trainer.synthetic import synthesize_dataset

    root = tmp_path_factory.mktemp("synthetic") / "data"
    synthesize_dataset(root, count=100, size=48, seed=3)
    return root


@pytest.fixture(scope="session")
def trained_run(synthetic_dir, tmp_path_factory):
    """A tiny model trained well enough on synthetic data to be confident (parity, learnability)."""
    if not HAS_TF:
        pytest.skip("TensorFlow not installed (train extra)")
    from trainer.config import TrainConfig
    from trainer.training import train

    out = tmp_path_factory.mktemp("runs")
    config = TrainConfig(
        data_dirs=[str(synthetic_dir)], output_dir=str(out), log_dir=str(out / "tb"), image_size=48, alpha=0.35,
        weights=tiny_weights(), batch_size=16, epochs=10, learning_rate=3e-3, fine_tune_epochs=4,
        fine_tune_learning_rate=1e-4, tensorboard=False, sample_grid_size=4, seed=TEST_SEED,
    )
    return train(config, log=lambda message: None, verbose=0)


@pytest.fixture(scope="session")
def converted_run(trained_run):
    """The tiny run converted to every precision of the registry."""
    from converters.options import ConvertOptions
    from converters.tflite import convert

    results = convert(trained_run.run_dir, ConvertOptions(list(PRECISIONS), calibration_images=40))
    return trained_run, {r.precision: Path(r.path) for r in results}
