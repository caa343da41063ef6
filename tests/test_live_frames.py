"""A whole-frame model live (issue 37), TF-free: `infer --video` prints each frame's lesions in
the frame's own pixels (the centre square scanned, --persist applied), `serve` answers uploads
with scan's rows and draws the map and boxes on its MJPEG stream; the scan of a crop and its
drawing stay in the whole frame's pixels."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from artery_edge.edge.metadata import ModelMetadata
from artery_edge.edge.overlay import draw_scan
from artery_edge.edge.scanner import FrameScanner
from artery_edge.edge.stream import draw_overlay
from tests.bad_inputs import cli, one_error_line
from tests.serve_helpers import get_json, mjpeg_frames, multipart, read_events, request, running_server
from tests.test_frames import MAP_META
from tests.tflite_builder import build_tiny_classifier, build_tiny_map_model

cv2 = pytest.importorskip("cv2", reason="OpenCV reads and writes the test video (camera / dev extra)")

SIZE = (160, 120)  # a camera's 4:3: the centre square is x 20..140
STEADY = (60, 40, 90, 70)  # a dark blob on every frame: the tiny model's "lesion"
FLICKER = (100, 90, 125, 110)  # a second one on frame 3 only
NEAR = 6  # px: the 32 px map over a 120 px square, and MJPG's blur


def frame_pixels(blobs) -> np.ndarray:
    """A bright BGR frame with dark rectangles."""
    pixels = np.full((SIZE[1], SIZE[0], 3), 230, np.uint8)
    for x0, y0, x1, y1 in blobs:
        pixels[y0:y1, x0:x1] = 10
    return pixels


def write_clip(path: Path, frames: int = 6, fps: float = 10.0) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, SIZE)
    assert writer.isOpened(), "OpenCV cannot write MJPG video here"
    for number in range(1, frames + 1):
        writer.write(frame_pixels([STEADY, FLICKER] if number == 3 else [STEADY]))
    writer.release()
    return path


def near(box, expected) -> bool:
    return all(abs(a - b) <= NEAR for a, b in zip(box, expected))


@pytest.fixture(scope="module")
def map_model(tmp_path_factory) -> Path:
    return build_tiny_map_model(tmp_path_factory.mktemp("model") / "map.tflite", 32, "uint8", metadata=MAP_META)


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return write_clip(tmp_path_factory.mktemp("clip") / "run.avi")


# --- the scan of a crop, and its drawing ------------------------------------------------------------

def test_a_region_is_scanned_and_drawn_in_the_whole_frames_pixels(map_model):
    scanner = FrameScanner(map_model)
    rgb = frame_pixels([STEADY, (2, 2, 14, 14)])  # the second blob lies outside the centre square
    scan = scanner.scan(rgb, region=(20, 0, 140, 120))
    assert scan.frame_size == SIZE and scan.region == (20, 0, 140, 120)
    assert len(scan.lesions) == 1 and near(scan.lesions[0].box, STEADY)
    assert len(scanner.scan(rgb).lesions) == 2  # the whole frame: both
    drawn = np.asarray(draw_scan(Image.fromarray(rgb), scan)).astype(int)
    centre = drawn[55, 75]
    assert centre[0] - centre[2] > 80  # the map tinted the blob (orange over black)
    assert (drawn[8, 8] == rgb[8, 8]).all()  # outside the region: the frame untouched
    window = rgb[..., ::-1].copy()  # the live window draws on OpenCV's BGR frame in place
    draw_overlay(cv2, window, scan, 10.0, "stenosis")
    assert (window[55, 75] == drawn[55, 75, ::-1]).all() and (window[100, 5] == 230).all()


# --- infer --camera / --video --------------------------------------------------------------------

def test_infer_video_prints_each_frames_lesions_in_frame_pixels(map_model, clip):
    result = cli("infer", "--model", str(map_model), "--video", str(clip), "--no-display", "--json")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["frame"] for line in lines] == [1, 2, 3, 4, 5, 6]
    assert lines[0].keys() == {"frame", "time", "lesions", "peak", "frame_size", "fps"}
    assert all(line["frame_size"] == list(SIZE) and line["peak"] > 0.5 for line in lines)
    boxes = [[lesion["box"] for lesion in line["lesions"]] for line in lines]
    assert all(len(frame) == (2 if number == 3 else 1) for number, frame in enumerate(boxes, 1)), boxes
    assert all(near(frame[0], STEADY) for frame in boxes) and near(boxes[2][1], FLICKER)
    text = cli("infer", "--model", str(map_model), "--video", str(clip), "--no-display", "--frames", "1")
    assert text.returncode == 0 and text.stdout.startswith("frame 1: 1 lesion peak ")


def test_infer_persist_drops_what_does_not_persist(map_model, clip):
    result = cli("infer", "--model", str(map_model), "--video", str(clip), "--no-display", "--json",
                 "--persist", "2/3")
    assert result.returncode == 0, result.stderr
    counts = [len(json.loads(line)["lesions"]) for line in result.stdout.splitlines()]
    assert counts == [0, 1, 1, 1, 1, 1]  # first sight, and the flicker of frame 3, dropped


def test_infer_refuses_what_a_whole_frame_model_or_persist_does_not_fit(map_model, clip, tmp_path):
    Image.fromarray(frame_pixels([STEADY])).save(tmp_path / "frame.png")
    image = cli("infer", "--model", str(map_model), "--image", str(tmp_path / "frame.png"))
    assert image.returncode == 1 and "artery-edge scan" in one_error_line(image)
    on_files = cli("infer", "--model", str(map_model), "--image", str(tmp_path / "frame.png"), "--persist", "2/3")
    assert on_files.returncode == 2 and "scan --persist" in one_error_line(on_files)
    patches = build_tiny_classifier(tmp_path / "tiny.tflite", "uint8", metadata=ModelMetadata(
        labels=["Healthy", "Unhealthy"], input_size=8, precision="int8"))
    classifier = cli("infer", "--model", str(patches), "--video", str(clip), "--no-display", "--persist", "2/3")
    assert classifier.returncode == 2 and "whole-frame models" in one_error_line(classifier)
    bad = cli("infer", "--model", str(map_model), "--video", str(clip), "--no-display", "--persist", "3/2")
    assert bad.returncode == 2 and "--persist 3/2" in one_error_line(bad)


# --- serve ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def served(tmp_path_factory, map_model):
    pytest.importorskip("tornado", reason="the serve extra (tornado) is not installed")
    folder = tmp_path_factory.mktemp("serve")
    with running_server(folder, "--model", str(map_model), "--video", str(write_clip(folder / "long.avi", 40))) as base:
        yield base


def test_serve_answers_an_upload_with_scans_rows(served, map_model, tmp_path):
    frame = tmp_path / "frame.png"
    Image.fromarray(frame_pixels([STEADY])[..., ::-1]).save(frame)
    scan = cli("scan", str(frame), "--model", str(map_model), "--json")
    assert scan.returncode == 0, scan.stderr
    (want,) = json.loads(scan.stdout)["results"]
    status, _, body = request(served, "POST", "/v1/predict", *multipart("image", "frame.png", frame.read_bytes()))
    assert status == 200, body
    answer = json.loads(body)
    (got,) = answer["results"]
    timing = ("file", "inference_ms", "total_ms")
    assert {k: v for k, v in got.items() if k not in timing} == {k: v for k, v in want.items() if k not in timing}
    assert got["file"] == "frame.png" and near(got["lesions"][0]["box"], STEADY)
    assert answer["threshold"] == 0.5 and answer["failed"] == 0
    bad = request(served, "POST", "/v1/predict", b"not an image", {"Content-Type": "image/png"})
    assert bad[0] == 400 and "not a readable image" in json.loads(bad[2])["error"]
    info = get_json(served, "/v1/model")
    assert info["task"] == "map" and info["positive_label"] == "stenosis"


def test_serve_streams_the_map_and_boxes_and_each_frames_lesions(served):
    (shown,) = mjpeg_frames(served, 1)
    assert shown.size == SIZE
    pixels = np.asarray(shown.convert("RGB")).astype(int)
    raw = frame_pixels([STEADY]).astype(int)  # grey: BGR and RGB alike
    assert pixels[55, 75, 0] - pixels[55, 75, 2] > 80 and raw[55, 75, 0] == raw[55, 75, 2]  # the blob tinted
    assert np.abs(pixels[100, 5] - raw[100, 5]).max() < 20  # outside the scanned square: the frame as it was
    events = read_events(served, lambda got: any(kind == "decision" for kind, _ in got))
    decision = next(data for kind, data in events if kind == "decision")
    assert decision.keys() == {"frame", "time", "lesions", "peak", "frame_size", "fps"}
    assert near(decision["lesions"][0]["box"], STEADY)
    chart = get_json(served, "/v1/status")["chart"]
    assert chart and chart[-1][2] in ("1 lesion", "2 lesions")


# --- inspect -------------------------------------------------------------------------------------

def test_inspect_describes_a_whole_frame_model(map_model):
    result = cli("inspect", str(map_model), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["metadata"]["task"] == "map" and summary["outputs"][0]["shape"] == [1, 32, 32, 1]
