"""platform/arm64_compare.py: what counts as x86 and arm64 agreeing (TF-free)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from artery_edge.edge import ModelMetadata
from tests.tflite_builder import OUTPUT_QUANT, build_tiny_classifier, build_tiny_map_model

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


def write_scan(path: Path, model: Path, frames: dict[str, list[tuple[list[float], float]]],
               peak: float = 0.2) -> None:
    """`scan --json` as it looks: one row per 512 px frame, its lesions' boxes and scores, its peak."""
    results = [{"file": name, "frame": None, "lesions": [{"box": box, "score": score} for box, score in lesions],
                "peak": max((score for _, score in lesions), default=peak), "frame_size": [512, 512],
                "inference_ms": 10.0, "total_ms": 14.0, "error": None} for name, lesions in frames.items()]
    path.write_text(json.dumps({"model": str(model), "threshold": 0.4, "results": results}))


GRID = (256, 1 / 256)  # the packaged model's map side and output step: a map pixel is 2 px of a 512 px frame


def scan_pair(compare_module, folder: Path, x86_frames: dict, arm_frames: dict):
    write_scan(folder / "x86" / "frames.json", folder / "frame.tflite", x86_frames)
    write_scan(folder / "arm64-trixie" / "frames.json", folder / "frame.tflite", arm_frames)
    return compare_module.compare_frames("trixie", folder / "x86" / "frames.json",
                                         folder / "arm64-trixie" / "frames.json", GRID)


def test_frame_boxes_and_scores_must_agree_within_two_map_pixels_and_two_steps(compare_module, stage):
    folder, _ = stage
    x86 = {"f.jpg": [([100.0, 100.0, 200.0, 180.0], 0.9961), ([300.0, 40.0, 340.0, 90.0], 0.5)]}
    close = {"f.jpg": [([100.0, 96.0, 200.0, 180.0], 0.9961), ([300.0, 40.0, 340.0, 92.0], 0.5 + 2 / 256)]}
    near = scan_pair(compare_module, folder, x86, close)  # 4 px = 2 map pixels; 2 output steps
    assert near.ok and near.max_box_px == pytest.approx(4.0) and near.max_box_map_px == pytest.approx(2.0)
    assert near.max_score_diff == pytest.approx(2 / 256) and near.lesions == 2
    box_far = scan_pair(compare_module, folder, x86, {"f.jpg": [([100.0, 94.0, 200.0, 180.0], 0.9961),
                                                                ([300.0, 40.0, 340.0, 90.0], 0.5)]})
    assert not box_far.ok and "3.0 map pixels" in box_far.problems[0]
    score_far = scan_pair(compare_module, folder, x86, {"f.jpg": [([100.0, 100.0, 200.0, 180.0], 0.9961),
                                                                  ([300.0, 40.0, 340.0, 90.0], 0.5 + 3 / 256)]})
    assert not score_far.ok and score_far.max_score_diff == pytest.approx(3 / 256)


def test_frame_lesions_are_matched_by_place_not_by_order(compare_module, stage):
    folder, _ = stage
    a, b = ([10.0, 10.0, 50.0, 50.0], 0.9961), ([300.0, 300.0, 400.0, 380.0], 0.9961)
    swapped = scan_pair(compare_module, folder, {"f.jpg": [a, b]}, {"f.jpg": [b, a]})
    assert swapped.ok and swapped.max_box_px == 0.0


def test_a_frame_without_lesions_still_compares_its_peak(compare_module, stage):
    folder, _ = stage
    write_scan(folder / "x86" / "frames.json", folder / "frame.tflite", {"f.jpg": []}, peak=0.30)
    write_scan(folder / "arm64-trixie" / "frames.json", folder / "frame.tflite", {"f.jpg": []}, peak=0.30 + 3 / 256)
    apart = compare_module.compare_frames("trixie", folder / "x86" / "frames.json",
                                          folder / "arm64-trixie" / "frames.json", GRID)
    assert not apart.ok and "the peak" in apart.problems[0] and apart.max_score_diff == pytest.approx(3 / 256)


def test_a_lesion_count_change_or_a_missing_frame_is_a_mismatch(compare_module, stage):
    folder, _ = stage
    lesion = ([10.0, 10.0, 50.0, 50.0], 0.9)
    counts = scan_pair(compare_module, folder, {"f.jpg": [lesion], "g.jpg": []}, {"f.jpg": [], "g.jpg": []})
    assert not counts.ok and counts.count_mismatches == 1 and "1 lesions on x86, 0 on arm64" in counts.problems[0]
    missing = scan_pair(compare_module, folder, {"f.jpg": [lesion], "g.jpg": []}, {"f.jpg": [lesion]})
    assert not missing.ok and "g.jpg: missing on arm64" in missing.problems


def test_model_grid_reads_the_map_side_and_output_step(compare_module, tmp_path):
    model = build_tiny_map_model(tmp_path / "map.tflite", size=16, input_dtype="uint8")
    assert compare_module.model_grid(model) == (16, pytest.approx(OUTPUT_QUANT["uint8"][0]))


def test_main_prints_both_tables_and_exits_1_on_mismatch(compare_module, stage, capsys):
    folder, model = stage
    for precision in compare_module.PRECISIONS:
        write_report(folder / "x86" / f"{precision}.json", model, {"a": ("Healthy", 0.1)})
        write_report(folder / "arm64-trixie" / f"{precision}.json", model, {"a": ("Healthy", 0.1)})
    frame_model = build_tiny_map_model(folder / "frame.tflite", size=16, input_dtype="uint8")
    for side in ("x86", "arm64-trixie"):
        write_scan(folder / side / "frames.json", frame_model, {"f.jpg": [([10.0, 10.0, 50.0, 50.0], 0.9)]})
    (folder / "times.tsv").write_text("trixie\ttf_absent\tyes\ntrixie\ttests_rc\t0\ntrixie\ttests\t10 / 1 / \n")
    assert compare_module.main(["--stage", str(folder), "--dist", "trixie"]) == 0
    out = capsys.readouterr().out
    assert "max abs dp vs x86" in out and "tests: passed / skipped / failed" in out
    assert "whole-frame model (int8)" in out and "scan: whole path per frame, median (ms)" in out
    (folder / "times.tsv").write_text("trixie\ttf_absent\tNO\ntrixie\ttests_rc\t0\n")
    assert compare_module.main(["--stage", str(folder), "--dist", "trixie"]) == 1
