"""Shared fixtures: synthetic datasets in tmp dirs, one tiny trained run per session."""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import functools
import importlib.util
import os
import pickle
import re
import shutil
from pathlib import Path
from typing import Iterator

import pytest

from artery_edge.edge.precisions import PRECISIONS

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
REAL_DATA = SHARED / "data" / "stenosis-patches"
WEIGHTS_FILE = "mobilenet_v2_0.35_224_no_top.h5"
WEIGHTS_035 = SHARED / "weights" / WEIGHTS_FILE
# The folder the suite's common tiny runs take ImageNet weights from (`make test SHARED=...` sets it):
# where it has none, as on a fresh clone, they train from scratch. CI names one that does not exist,
# so every run checks the newcomer's setting; the few tests that need a pretrained model take
# ../shared's file themselves (`imagenet_run`) or skip, saying why.
TEST_WEIGHTS_035 = Path(os.environ.get("ARTERY_EDGE_TEST_WEIGHTS", SHARED / "weights")) / WEIGHTS_FILE
HAS_TF = importlib.util.find_spec("tensorflow") is not None
# Seeds the models trained in the suite; the parity bounds must hold for any value
# (e.g. `ARTERY_EDGE_TEST_SEED=7 pytest -m parity`).
TEST_SEED = int(os.environ.get("ARTERY_EDGE_TEST_SEED", "42"))

# tests/probes/ holds the hostile-probe harnesses (scripts run by hand, tests/probes.md): never collected.
collect_ignore = ["probes"]

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
# A test on a pretrained tiny model: it takes the `imagenet_run` fixture, which skips (saying why)
# where neither the suite's run nor ../shared has ImageNet weights.
needs_imagenet = pytest.mark.shared


def tiny_weights() -> str:
    """The suite's ImageNet alpha-0.35 weights (``ARTERY_EDGE_TEST_WEIGHTS``, default ../shared)
    when present, else random init: what a fresh clone trains with."""
    return str(TEST_WEIGHTS_035) if TEST_WEIGHTS_035.is_file() else "none"


@pytest.fixture(scope="session")
def synthetic_dir(tmp_path_factory) -> Path:
    from artery_edge.trainer.synthetic import synthesize_dataset

    root = tmp_path_factory.mktemp("synthetic") / "data"
    synthesize_dataset(root, count=100, size=48, seed=3)
    return root


@contextlib.contextmanager
def built_once(request, tmp_path_factory, name: str) -> Iterator[Path | None]:
    """Under pytest-xdist each worker would build the session's fixtures again (a training run
    and four conversions: about two minutes of CI each). The first worker to come builds in
    the workers' common temporary folder, under a lock the others wait on, and writes
    ``done`` when it finished; a worker gets that folder (None without xdist: build in place)."""
    if not hasattr(request.config, "workerinput"):  # not a pytest-xdist worker
        yield None
        return
    common = tmp_path_factory.getbasetemp().parent / name  # pytest-N/: this session's, shared by its workers
    common.mkdir(exist_ok=True)
    with open(common / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield common
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def tiny_train(out: Path, synthetic_dir: Path, weights: str):
    from artery_edge.trainer.config import TrainConfig
    from artery_edge.trainer.training import train

    config = TrainConfig(
        data_dirs=[str(synthetic_dir)], output_dir=str(out), log_dir=str(out / "tb"), image_size=48, alpha=0.35,
        weights=weights, batch_size=16, epochs=10, learning_rate=3e-3, fine_tune_epochs=4,
        fine_tune_learning_rate=1e-4, tensorboard=False, sample_grid_size=4, seed=TEST_SEED,
    )
    return train(config, log=lambda message: None, verbose=0)


def trained_once(name: str, weights: str, synthetic_dir: Path, tmp_path_factory, request):
    """A tiny run trained once per session (under xdist once for all workers, in their common
    folder ``name``); each worker gets its own copy of the folder: tests write into it."""
    if not HAS_TF:
        pytest.skip("TensorFlow not installed (train extra)")
    out = tmp_path_factory.mktemp("runs")
    with built_once(request, tmp_path_factory, name) as common:
        if common is None:
            return tiny_train(out, synthetic_dir, weights)
        if not (common / "done").is_file():
            (common / "result.pickle").write_bytes(pickle.dumps(tiny_train(common / "runs", synthetic_dir, weights)))
            (common / "done").touch()
        result = pickle.loads((common / "result.pickle").read_bytes())
        copy = out / result.run_dir.name
        shutil.copytree(result.run_dir, copy)
        return dataclasses.replace(result, run_dir=copy)


def converted_once(name: str, run, source_name: str, tmp_path_factory, request):
    """``run`` converted to every precision of the registry (under xdist converted once, as
    above, from the common folder ``source_name``, and copied into this worker's run folder)."""
    from artery_edge.converters.options import ConvertOptions
    from artery_edge.converters.tflite import convert

    options = ConvertOptions(list(PRECISIONS), calibration_images=40)
    with built_once(request, tmp_path_factory, name) as common:
        if common is None:
            results = convert(run.run_dir, options)
        else:
            source = common.parent / source_name / "runs" / run.run_dir.name
            if not (common / "done").is_file():
                options = dataclasses.replace(options, out_dir=common / "models")
                (common / "results.pickle").write_bytes(pickle.dumps(convert(source, options)))
                (common / "done").touch()
            results = pickle.loads((common / "results.pickle").read_bytes())
            for result in results:
                shutil.copy2(result.path, run.run_dir / Path(result.path).name)
    return run, {r.precision: run.run_dir / Path(r.path).name for r in results}


@pytest.fixture(scope="session")
def trained_run(synthetic_dir, tmp_path_factory, request):
    """A tiny model trained on synthetic data (ImageNet start where the suite has the weights,
    else from scratch): parity, learnability, every command's input."""
    return trained_once("trained_run", tiny_weights(), synthetic_dir, tmp_path_factory, request)


@pytest.fixture(scope="session")
def converted_run(trained_run, tmp_path_factory, request):
    """The tiny run converted to every precision of the registry."""
    return converted_once("converted_run", trained_run, "trained_run", tmp_path_factory, request)


@pytest.fixture(scope="session")
def imagenet_run(synthetic_dir, tmp_path_factory, request):
    """The tiny run started from ImageNet weights, for the few tests that need a pretrained model
    (accuracy bounds, blending toward the pretrained weights): the session's run when it had
    them, else one trained here from ../shared's file; skipped, saying why, without it."""
    if tiny_weights() != "none":
        return request.getfixturevalue("trained_run")
    if not WEIGHTS_035.is_file():
        pytest.skip(f"ImageNet weights not found at {WEIGHTS_035} (../shared is absent): "
                    f"a tiny model trained from scratch is not accurate enough for this test")
    return trained_once("imagenet_run", str(WEIGHTS_035), synthetic_dir, tmp_path_factory, request)


@pytest.fixture(scope="session")
def imagenet_converted_run(imagenet_run, tmp_path_factory, request):
    """:func:`imagenet_run` converted to every precision (the session's conversions when it is the session's run)."""
    if tiny_weights() != "none":
        return request.getfixturevalue("converted_run")
    return converted_once("imagenet_converted_run", imagenet_run, "imagenet_run", tmp_path_factory, request)
