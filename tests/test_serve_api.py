"""`artery-edge serve`'s API against a live video source (TF-free): /v1/predict answers with
infer --json's document, /v1/model names the file, /v1/stream gives JPEG frames, /v1/decisions
streams infer's frame lines, and a source that ends is reported lost and re-opened while the
API keeps answering. The feed's re-open logic is also tested alone, with a fake camera."""

from __future__ import annotations

import hashlib
import json
import re
import threading
from importlib import resources

import numpy as np
import pytest

from artery_edge.edge import Classifier, EdgeError, ModelMetadata
from tests.bad_inputs import LABELS, cli
from tests.serve_helpers import (get_json, mjpeg_frames, multipart, png_bytes, read_events, request, running_server,
                                 wait_until, write_video)
from tests.tflite_builder import build_tiny_classifier

pytest.importorskip("tornado", reason="the serve extra (tornado) is not installed")
pytest.importorskip("cv2", reason="OpenCV writes the test video (dev extra)")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return build_tiny_classifier(tmp_path_factory.mktemp("model") / "tiny.tflite", "uint8",
                                 metadata=ModelMetadata(labels=LABELS, input_size=8, precision="int8"))


@pytest.fixture(scope="module")
def live(tmp_path_factory, tiny_model):
    """A server whose video lasts two seconds, so it ends (camera lost) and is re-opened again and again."""
    folder = tmp_path_factory.mktemp("live")
    video = write_video(folder / "short.avi", frames=20, fps=10)
    with running_server(folder, "--model", str(tiny_model), "--video", str(video)) as base:
        yield base


def test_predict_answers_with_the_document_infer_json_prints(live, tiny_model, tmp_path):
    image = tmp_path / "patch.png"
    image.write_bytes(png_bytes(5))
    infer = cli("infer", "--model", str(tiny_model), "--image", str(image), "--json")
    assert infer.returncode == 0, infer.stderr
    expected = json.loads(infer.stdout)
    status, _, body = request(live, "POST", "/v1/predict", *multipart("image", "patch.png", image.read_bytes()))
    answer = json.loads(body)
    assert status == 200 and answer.keys() == expected.keys()
    (got,), (want,) = answer["results"], expected["results"]
    assert got.keys() == want.keys() and got["file"] == "patch.png"
    assert {k: v for k, v in got.items() if k not in ("file", "inference_ms")} == \
           {k: v for k, v in want.items() if k not in ("file", "inference_ms")}
    raw = request(live, "POST", "/v1/predict", image.read_bytes(), {"Content-Type": "image/png"})
    assert raw[0] == 200 and json.loads(raw[2])["results"][0]["label"] == want["label"]


def test_model_names_the_file_and_its_sha256(live, tiny_model):
    info = get_json(live, "/v1/model")
    assert info["labels"] == LABELS and info["positive_label"] == "Unhealthy" and info["precision"] == "int8"
    assert info["sha256"] == hashlib.sha256(tiny_model.read_bytes()).hexdigest()


def test_the_stream_is_mjpeg_of_the_video(live):
    frames = mjpeg_frames(live, 2)
    assert all(f.format == "JPEG" and f.size == (160, 120) for f in frames)


def test_a_source_that_ends_is_lost_then_reopened_and_the_api_keeps_working(live):
    def lost_then_live(events):
        states = [data["state"] for kind, data in events if kind == "status"]
        return "lost" in states and "live" in states[states.index("lost"):]

    events = read_events(live, lost_then_live)
    lost = next(data for kind, data in events if kind == "status" and data["state"] == "lost")
    assert "gave no more frames" in lost["message"] and "re-opening" in lost["message"]
    decision = next(data for kind, data in events if kind == "decision")
    assert decision.keys() == {"frame", "time", "label", "probabilities", "fps"}  # infer --json's frame line
    wait_until(lambda: get_json(live, "/v1/status")["state"] == "lost", 30, "the camera to be lost again", 0.05)
    status, _, body = request(live, "POST", "/v1/predict", *multipart("image", "while-lost.png", png_bytes(2)))
    assert status == 200 and json.loads(body)["results"][0]["label"] in LABELS
    assert get_json(live, "/v1/status")["opened"] >= 2


class FakeCamera:
    """Three frames, then nothing (unplugged)."""

    name = "fake camera"

    def __init__(self) -> None:
        self.left = 3

    def read(self):
        self.left -= 1
        return np.full((24, 32, 3), 128, np.uint8) if self.left >= 0 else None

    def close(self) -> None:
        pass


def test_the_feed_retries_a_camera_that_is_away_and_resumes(tiny_model):
    from artery_edge.edge.serve.live import LiveFeed

    opens = []

    def opener():
        opens.append(1)
        if len(opens) == 2:
            raise EdgeError("cannot open camera 0")  # unplugged for a moment
        return FakeCamera()

    events, done = [], threading.Event()

    def publish(kind, data):
        events.append((kind, dict(data)))
        if len(opens) >= 3 and kind == "status" and data["state"] == "lost":
            done.set()

    feed = LiveFeed(Classifier(tiny_model), opener, publish, retry_s=0.05)
    feed.start()
    assert done.wait(30), events
    feed.stop()
    states = [(data["state"], data["message"]) for kind, data in events if kind == "status"]
    assert [s for s, _ in states[:4]] == ["live", "lost", "lost", "live"], states
    assert "gave no more frames after 3" in states[1][1] and "cannot open camera 0" in states[2][1]
    assert sum(kind == "decision" for kind, _ in events) >= 6
    assert states[-1][0] == "stopped" and not feed._thread.is_alive()
    status = feed.status()
    assert status["frames"] >= 6 and len(status["recent"]) >= 6 and status["chart"]


def test_the_page_needs_nothing_from_another_host():
    folder = resources.files("artery_edge.edge.serve") / "static"
    from artery_edge.edge.serve.app import ASSETS

    assert sorted(p.name for p in folder.iterdir()) == sorted(ASSETS)
    for name in ASSETS:
        text = (folder / name).read_text()
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.I), f"{name} loads from another host"
        assert "innerHTML" not in text  # text from the model or a file name is never parsed as HTML
