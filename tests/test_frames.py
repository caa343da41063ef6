"""Whole frames, TF-free: the COCO/VOC loader, the lesion decoder, ARCADE's F1, `scan`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from PIL import Image
from typer.testing import CliRunner

from artery_edge.cli import app
from artery_edge.edge.annotations import AnnotationError, Lesion, load_frames
from artery_edge.edge.classifier import Classifier
from artery_edge.edge.errors import ModelError
from artery_edge.edge.lesions import FoundLesion, decode_map, label_regions
from artery_edge.edge.metadata import ModelMetadata
from artery_edge.edge.scan_batch import Persistence
from artery_edge.edge.scanner import FrameScanner
from tests.tflite_builder import build_tiny_classifier, build_tiny_map_model
from artery_edge.trainer.frame_metrics import arcade_f1, average_precision, count_lesions

runner = CliRunner()
MAP_META = ModelMetadata(labels=["stenosis"], input_size=32, precision="int8", positive_label="stenosis",
                         threshold=0.5, task="map", decoding={"min_area": 2})


def write_coco(folder: Path, images: list[dict], annotations: list[dict]) -> Path:
    (folder / "images").mkdir(parents=True, exist_ok=True)
    for image in images:
        Image.new("L", (image["width"], image["height"]), 200).save(folder / "images" / image["file_name"])
    (folder / "annotations.json").write_text(json.dumps({"images": images, "annotations": annotations}))
    return folder


def frame_with_blobs(size: int, blobs: list[tuple[int, int, int, int]]) -> np.ndarray:
    """A bright frame with dark rectangles (the tiny map model's "lesions")."""
    pixels = np.full((size, size, 3), 230, np.uint8)
    for x0, y0, x1, y1 in blobs:
        pixels[y0:y1, x0:x1] = 10
    return pixels


@pytest.fixture
def map_model(tmp_path) -> Path:
    return build_tiny_map_model(tmp_path / "map.tflite", 32, "uint8", metadata=MAP_META)


# --- the loader ------------------------------------------------------------------------------------

def test_coco_frames_lesions_outlines_and_negatives(tmp_path):
    folder = write_coco(tmp_path, [{"id": 1, "file_name": "a.png", "width": 100, "height": 80},
                                   {"id": 2, "file_name": "b.png", "width": 100, "height": 80}],
                        [{"image_id": 1, "bbox": [10, 20, 30, 10], "segmentation": [[10, 20, 40, 20, 40, 30]]},
                         {"image_id": 1, "bbox": [90, 70, 50, 50]}])  # partly outside: clipped
    first, second = load_frames(folder)
    assert first.lesions[0].box == (10, 20, 40, 30) and len(first.lesions[0].outline) == 3
    assert first.lesions[1].box == (90, 70, 100, 80) and first.lesions[1].outline is None
    assert second.lesions == ()  # no annotation: a frame without lesions
    mask = first.mask(50, 40, "box")  # half size: boxes scaled
    assert mask[12, 10] == 1 and mask[5, 5] == 0


def test_voc_frames_by_run_and_missing_xml_is_negative(tmp_path):
    run = tmp_path / "run1"
    run.mkdir()
    Image.new("L", (64, 64)).save(run / "f1.jpg")
    Image.new("L", (64, 64)).save(run / "f2.jpg")
    (run / "f1.xml").write_text("<annotation><size><width>64</width><height>64</height></size><object>"
                                "<name>Stenosis</name><bndbox><xmin>5</xmin><ymin>6</ymin><xmax>20</xmax>"
                                "<ymax>30</ymax></bndbox></object></annotation>")
    one, two = load_frames(tmp_path)
    assert one.lesions == (Lesion((5.0, 6.0, 20.0, 30.0)),) and one.group == "run1"
    assert two.lesions == ()


@pytest.mark.parametrize("annotations, message", [
    ("{not json", "not a COCO annotation file"),
    (json.dumps({"images": [], "annotations": []}), "no frames"),
    (json.dumps({"annotations": []}), "not a COCO annotation file"),
    (json.dumps({"images": [{"id": 1, "file_name": "a.png", "width": 10, "height": 10}],
                 "annotations": [{"image_id": 1, "bbox": [20, 20, 5, 5]}]}), "outside the 10x10 frame"),
    (json.dumps({"images": [{"id": 1, "file_name": "a.png", "width": 10, "height": 10}],
                 "annotations": [{"image_id": 7, "bbox": [1, 1, 5, 5]}]}), "names no image"),
    (json.dumps({"images": [{"id": 1, "file_name": "a.png", "width": 10, "height": 10}],
                 "annotations": [{"image_id": 1, "bbox": [1, "x", 5, 5]}]}), "not a finite number"),
])
def test_bad_annotations_are_one_line(tmp_path, annotations, message):
    (tmp_path / "annotations.json").write_text(annotations)
    with pytest.raises(AnnotationError, match=message) as caught:
        load_frames(tmp_path)
    assert "\n" not in str(caught.value)


def test_malformed_voc_is_one_line(tmp_path):
    Image.new("L", (8, 8)).save(tmp_path / "f.png")
    (tmp_path / "f.xml").write_text("<annotation><size><width>8</width>")
    with pytest.raises(AnnotationError, match="not a Pascal VOC annotation"):
        load_frames(tmp_path)


# --- the decoder and the metrics ---------------------------------------------------------------------

def flood_fill_count(mask: np.ndarray) -> int:
    """The reference: regions by a plain flood fill (8-neighbourhood)."""
    seen = np.zeros_like(mask, bool)
    count = 0
    for start in zip(*np.nonzero(mask)):
        if seen[start]:
            continue
        count += 1
        stack = [start]
        seen[start] = True
        while stack:
            y, x = stack.pop()
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    ny, nx = y + dy, x + dx
                    if 0 <= ny < mask.shape[0] and 0 <= nx < mask.shape[1] and mask[ny, nx] and not seen[ny, nx]:
                        seen[ny, nx] = True
                        stack.append((ny, nx))
    return count


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 24), st.integers(1, 24), st.floats(0.05, 0.95), st.integers(0, 2**31))
def test_regions_match_a_flood_fill(height, width, density, seed):
    mask = np.random.default_rng(seed).random((height, width)) < density
    labels, count = label_regions(mask)
    assert count == flood_fill_count(mask)
    assert set(np.unique(labels[mask])) == set(range(1, count + 1)) and not labels[~mask].any()


def test_decode_map_scales_boxes_and_drops_small_regions():
    probability = np.zeros((16, 16))
    probability[2:6, 4:8] = 0.9  # 16 pixels
    probability[12, 12] = 0.8  # 1 pixel: below min_area
    found = decode_map(probability, 0.5, (64, 32), min_area=2)
    assert found == [FoundLesion((16.0, 4.0, 32.0, 12.0), 0.9, 16)]


def square(size: int, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    mask = np.zeros((size, size), bool)
    mask[y0:y1, x0:x1] = True
    return mask


def test_arcade_f1_pinned_on_hand_made_masks():
    truth = square(20, 0, 0, 10, 10)  # 100 px
    assert arcade_f1(truth, [truth]) == 1.0
    half = square(20, 5, 0, 15, 10)  # 50 px overlap: F1 = 2 * 50 / 200
    assert arcade_f1(half, [truth]) == pytest.approx(0.5)
    # a false region beside it: the list is [0.5, 0.0]
    assert arcade_f1(half | square(20, 17, 17, 20, 20), [truth]) == pytest.approx(0.25)
    # two truths, one found exactly, one missed: [1.0, 0.0]
    other = square(20, 12, 12, 18, 18)
    assert arcade_f1(truth, [truth, other]) == pytest.approx(0.5)
    assert arcade_f1(np.zeros((20, 20), bool), [truth]) == 0.0
    assert arcade_f1(np.zeros((20, 20), bool), []) is None


def test_lesion_counts_centre_rule_and_average_precision():
    truths = [Lesion((10, 10, 20, 20)), Lesion((50, 50, 60, 60))]
    marks = [FoundLesion((8, 8, 22, 22), 0.9, 5), FoundLesion((80, 80, 90, 90), 0.6, 5)]
    counts = count_lesions(marks, truths)
    assert (counts.found, counts.truths, counts.false) == (1, 2, 1)
    assert average_precision([(marks, truths)]) == pytest.approx(0.5)  # first mark right: P 1 at R 0.5
    assert average_precision([([FoundLesion((10, 10, 20, 20), 0.9, 1), FoundLesion((50, 50, 60, 60), 0.8, 1)],
                               truths)]) == pytest.approx(1.0)


def test_persistence_keeps_a_lesion_seen_in_n_of_m_frames():
    keep = Persistence.parse("2/3").filter()
    steady = FoundLesion((10, 10, 20, 20), 0.9, 4)
    flicker = FoundLesion((40, 40, 50, 50), 0.9, 4)
    assert keep([steady]) == []  # first sight: 1 of 1
    assert keep([steady, flicker]) == [steady]
    assert keep([steady]) == [steady]
    with pytest.raises(Exception, match="N/M"):
        Persistence.parse("2-3")


# --- the runtime and the command ---------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float32", "uint8"])
def test_scanner_marks_the_dark_blob_in_frame_pixels(tmp_path, dtype):
    meta = ModelMetadata(**{**MAP_META.__dict__, "precision": dtype})
    scanner = FrameScanner(build_tiny_map_model(tmp_path / "m.tflite", 32, dtype, metadata=meta))
    scan = scanner.scan(frame_with_blobs(128, [(32, 64, 64, 80)]))
    assert len(scan.lesions) == 1 and scan.frame_size == (128, 128)
    x0, y0, x1, y1 = scan.lesions[0].box
    assert abs(x0 - 32) <= 4 and abs(y0 - 64) <= 4 and abs(x1 - 64) <= 4 and abs(y1 - 80) <= 4
    assert scanner.scan(frame_with_blobs(128, [])).lesions == []


def test_each_runtime_refuses_the_other_kind_of_model(tmp_path, map_model):
    with pytest.raises(ModelError, match="whole-frame model .*scan"):
        Classifier(map_model)
    classifier = build_tiny_classifier(tmp_path / "c.tflite", "uint8", metadata=ModelMetadata(
        labels=["Healthy", "Unhealthy"], input_size=8, precision="int8"))
    with pytest.raises(ModelError, match="patch classifier.*infer"):
        FrameScanner(classifier)


def test_scan_cli_table_json_and_overlays_never_replaced(tmp_path, map_model):
    frames = tmp_path / "frames"
    frames.mkdir()
    Image.fromarray(frame_with_blobs(96, [(10, 10, 30, 30)])).save(frames / "one.png")
    Image.fromarray(frame_with_blobs(96, [])).save(frames / "none.png")
    out = tmp_path / "out"
    result = runner.invoke(app, ["scan", str(frames), "--model", str(map_model), "--json", "--out", str(out)])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    rows = {Path(r["file"]).name: r for r in document["results"]}
    assert len(rows["one.png"]["lesions"]) == 1 and rows["none.png"]["lesions"] == []
    assert document["threshold"] == 0.5 and document["failed"] == 0
    assert sorted(p.name for p in out.iterdir()) == ["none.png", "one.png"]
    overlay = np.asarray(Image.open(out / "one.png"))
    assert overlay.shape == (96, 96, 3) and (overlay[20, 20] != 10).any()  # the map tinted the blob
    before = (out / "one.png").read_bytes()
    again = runner.invoke(app, ["scan", str(frames / "one.png"), "--model", str(map_model), "--out", str(out)])
    assert again.exit_code == 1 and "not replaced" in again.output
    assert (out / "one.png").read_bytes() == before


@pytest.mark.parametrize("name, data", [("text.png", b"hello"), ("empty.png", b""), ("fake.mp4", b"not a video")])
def test_scan_out_is_not_made_when_no_frame_could_be_read(tmp_path, map_model, name, data):
    (tmp_path / name).write_bytes(data)
    out = tmp_path / "out"
    result = runner.invoke(app, ["scan", str(tmp_path / name), "--model", str(map_model), "--out", str(out)])
    assert result.exit_code == 1 and not out.exists(), result.output


@pytest.mark.parametrize("arguments, message, code", [
    (["--threshold", "1.5"], "--threshold must lie", 2),
    (["--persist", "3/2"], "--persist 3/2", 2),
    (["--threads", "0"], "--threads must lie", 2),
])
def test_scan_option_errors_are_one_line_before_any_work(tmp_path, map_model, arguments, message, code):
    Image.fromarray(frame_with_blobs(32, [])).save(tmp_path / "f.png")
    result = runner.invoke(app, ["scan", str(tmp_path / "f.png"), "--model", str(map_model), *arguments])
    assert result.exit_code == code and message in result.output
    assert [line for line in result.output.splitlines() if line.startswith("error:")] == [
        line for line in result.output.splitlines() if line.strip()]


def test_scan_bad_inputs_each_one_error_line(tmp_path, map_model):
    (tmp_path / "missing.png").unlink(missing_ok=True)
    (tmp_path / "fake.png").write_bytes(b"not an image")
    huge = tmp_path / "huge.png"
    Image.new("L", (10_000, 10_000)).save(huge)  # 100 MP: past the decompression-bomb guard
    result = runner.invoke(app, ["scan", str(tmp_path / "missing.png"), str(tmp_path / "fake.png"), str(huge),
                                 "--model", str(map_model), "--json"])
    assert result.exit_code == 1
    errors = {Path(r["file"]).name: r["error"] for r in json.loads(result.stdout)["results"]}
    assert "no such file" in errors["missing.png"] and "not a readable image" in errors["fake.png"]
    assert "limit" in errors["huge.png"] or "budget" in errors["huge.png"]


def test_scan_a_video_with_no_frames_is_an_error(tmp_path, map_model):
    cv2 = pytest.importorskip("cv2", reason="reading videos needs OpenCV (camera extra)")
    path = tmp_path / "empty.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (32, 32))
    writer.release()
    result = runner.invoke(app, ["scan", str(path), "--model", str(map_model)])
    assert result.exit_code == 1 and "error:" in result.output


def test_the_patch_classifier_says_when_it_is_shown_a_whole_frame(tmp_path):
    meta = ModelMetadata(labels=["Healthy", "Unhealthy"], input_size=8, precision="int8",
                         training={"image_sizes": [8, 24]})
    model = build_tiny_classifier(tmp_path / "c.tflite", "uint8", metadata=meta)
    Image.fromarray(frame_with_blobs(20, [])).save(tmp_path / "patch.png")
    Image.fromarray(frame_with_blobs(200, [])).save(tmp_path / "frame.png")
    result = runner.invoke(app, ["infer", "--model", str(model), "--image", str(tmp_path / "patch.png"),
                                 "--image", str(tmp_path / "frame.png"), "--json"])
    assert result.exit_code == 0, result.output
    rows = {Path(r["file"]).name: r for r in json.loads(result.stdout)["results"]}
    assert rows["patch.png"]["size_note"] is None
    assert "200x200" in rows["frame.png"]["size_note"] and "artery-edge scan" in rows["frame.png"]["size_note"]
    table = runner.invoke(app, ["infer", "--model", str(model), "--image", str(tmp_path / "frame.png")])
    assert "note: a 200x200 image, far outside the 8-24 px" in table.output


def test_arcade_f1_scores_the_lesions_the_device_reports(tmp_path):
    """A region too small to be reported (min_area) is not counted as a false outline either."""
    from artery_edge.edge.annotations import Frame
    from artery_edge.trainer.frame_metrics import score_maps

    probability = np.zeros((16, 16), np.float32)
    probability[4:8, 4:8] = 0.9  # the true lesion, exactly
    probability[12, 12] = 0.9  # one stray map pixel
    frame = Frame(tmp_path / "f.png", 16, 16, (Lesion((4, 4, 8, 8), ((4, 4), (7, 4), (7, 7), (4, 7))),))  # Pillow fills 4..7
    every = score_maps([probability], [frame], 0.5, min_area=1)
    reported = score_maps([probability], [frame], 0.5, min_area=4)
    assert every.f1[0] < 0.6 and len(every.marks[0]) == 2 and every.false[0] == 1
    assert reported.f1[0] == 1.0 and len(reported.marks[0]) == 1 and reported.false[0] == 0


def test_the_packaged_whole_frame_model_is_the_released_file_and_scans_without_model(tmp_path):
    """`scan` without --model uses the packaged file, which is the one the code and the card name."""
    import hashlib
    import re

    from artery_edge.edge.reference import FRAME_FILE, FRAME_SHA256, packaged_frame_model

    path = packaged_frame_model()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == FRAME_SHA256
    card = (Path(__file__).resolve().parents[1] / "models" / "frames" / "MODEL_CARD.md").read_text()
    assert FRAME_SHA256 in re.findall(r"`([0-9a-f]{64})`", card) or FRAME_FILE in card
    Image.fromarray(frame_with_blobs(512, [])).save(tmp_path / "frame.png")
    result = runner.invoke(app, ["scan", str(tmp_path / "frame.png"), "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert Path(document["model"]) == path and document["results"][0]["lesions"] is not None


def test_a_modified_packaged_whole_frame_model_is_refused(tmp_path, monkeypatch):
    from artery_edge.edge import reference

    copy = tmp_path / reference.FRAME_FILE
    data = bytearray(reference.packaged_frame_model().read_bytes())
    data[-100] ^= 1
    copy.write_bytes(bytes(data))
    monkeypatch.setattr(reference, "frame_location", lambda: copy)
    monkeypatch.delenv(reference.ALLOW_MODIFIED, raising=False)
    Image.fromarray(frame_with_blobs(64, [])).save(tmp_path / "frame.png")
    result = runner.invoke(app, ["scan", str(tmp_path / "frame.png")])
    assert result.exit_code == 1 and "is not the released whole-frame model" in result.output


def test_a_resumed_map_run_records_the_time_of_every_process(tmp_path):
    """``frame_state.json`` carries the stages done and the time spent so far, so the run record of
    an interrupted and resumed run counts both processes (it once counted the last one only)."""
    from artery_edge.trainer.frame_training import STATE_FILE, StageState

    first = StageState(tmp_path)
    first.mark(1, 3)
    saved = json.loads((tmp_path / STATE_FILE).read_text())
    (tmp_path / STATE_FILE).write_text(json.dumps({**saved, "seconds": 2370.0}))  # as a killed process left it
    resumed = StageState(tmp_path)
    assert resumed.done == {"1": 3} and 2370.0 <= resumed.seconds < 2400.0
