"""platform/arm64_compare.py: what counts as x86 and arm64 agreeing (TF-free)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from artery_edge.edge import ModelMetadata
from tests.tflite_builder import build_tiny_classifier

SCRIPT = Path(__file__).resolve().parents[1] / "platform" / "arm64_compare.py"


@pytest.fixture(scope="module")
def compare_module():
    spec = importlib.util.spec_from_file_location("arm64_compare", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


@pytest.fixture
def stage(tmp_path) -> Path:
    meta = ModelMetadata(labels=["Healthy", "Unhealthy"], input_size=8, precision="int8", threshold=0.3,
                         positive_label="Unhealthy")
    model = build_tiny_classifier(tmp_path / "model.tflite", "uint8", metadata=meta)
    (tmp_path / "x86").mkdir()
    (tmp_path / "arm64-trixie").mkdir()
    return tmp_path, model


def write_report(path: Path, model: Path, rows: dict[str, tuple[str, float]], threshold=0.3) -> None:
    """`infer --json` as it looks: one row per file with the label and p_<class>."""
    results = [{"file": name, "label": label, "p_Healthy": 1 - p, "p_Unhealthy": p, "inference_ms": 1.0,
                "true_label": None, "error": None} for name, (label, p) in rows.items()]
    path.write_text(json.dumps({"model": str(model), "threshold": threshold, "results": results}))


def run(compare_module, stage, precision, x86_rows, arm_rows):
    folder, model = stage
    write_report(folder / "x86" / f"{precision}.json", model, x86_rows)
    write_report(folder / "arm64-trixie" / f"{precision}.json", model, arm_rows)
    return compare_module.compare("trixie", precision, folder / "x86" / f"{precision}.json",
                                  folder / "arm64-trixie" / f"{precision}.json")


def test_float32_must_agree_within_1e_5(compare_module, stage):
    same = run(compare_module, stage, "float32", {"a": ("Healthy", 0.1)}, {"a": ("Healthy", 0.1 + 5e-6)})
    assert same.ok and same.max_diff == pytest.approx(5e-6)
    apart = run(compare_module, stage, "float32", {"a": ("Healthy", 0.1)}, {"a": ("Healthy", 0.1 + 5e-5)})
    assert not apart.ok


def test_int8_flip_allowed_only_within_the_band_around_the_stored_threshold(compare_module, stage):
    band = compare_module.BOUNDS["int8"].band
    near = 0.3 + band / 2  # x86 probability close to the model's threshold (0.3, not 0.5)
    inside = run(compare_module, stage, "int8", {"a": ("Unhealthy", near)}, {"a": ("Healthy", 0.29)})
    assert inside.ok and inside.flips == 1 and inside.flips_outside_band == 0
    far = run(compare_module, stage, "int8", {"a": ("Unhealthy", 0.3 + band + 0.01)}, {"a": ("Healthy", 0.2)})
    assert not far.ok and far.flips_outside_band == 1


def test_a_file_missing_or_failed_on_arm64_is_a_mismatch(compare_module, stage):
    missing = run(compare_module, stage, "dynamic", {"a": ("Healthy", 0.1), "b": ("Healthy", 0.2)},
                  {"a": ("Healthy", 0.1)})
    assert not missing.ok and "b: missing on arm64" in missing.problems


def test_main_prints_both_tables_and_exits_1_on_mismatch(compare_module, stage, capsys):
    folder, model = stage
    for precision in compare_module.PRECISIONS:
        write_report(folder / "x86" / f"{precision}.json", model, {"a": ("Healthy", 0.1)})
        write_report(folder / "arm64-trixie" / f"{precision}.json", model, {"a": ("Healthy", 0.1)})
    (folder / "times.tsv").write_text("trixie\ttf_absent\tyes\ntrixie\ttests_rc\t0\ntrixie\ttests\t10 / 1 / \n")
    assert compare_module.main(["--stage", str(folder), "--dist", "trixie"]) == 0
    out = capsys.readouterr().out
    assert "max abs dp vs x86" in out and "tests: passed / skipped / failed" in out
    (folder / "times.tsv").write_text("trixie\ttf_absent\tNO\ntrixie\ttests_rc\t0\n")
    assert compare_module.main(["--stage", str(folder), "--dist", "trixie"]) == 1
