"""`infer --camera pi` (and a Pi whose only camera is a camera module) through picamera2, TF-free.

No Pi camera is here: ``StandInPicamera2`` mimics the part of picamera2's API the loop uses
(``Picamera2(n)``, ``global_camera_info``, ``create_preview_configuration`` /
``create_still_configuration``, ``configure``, ``start``, ``capture_array``, ``stop``, ``close``)
and is installed as the ``picamera2`` module for the test's duration.
"""

from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from artery_edge.cli import app
from artery_edge.edge import Classifier, ModelMetadata
from artery_edge.edge.camera import OpenCVFrames
from artery_edge.edge.stream import center_crop, run_stream
from tests.tflite_builder import build_tiny_classifier

runner = CliRunner()
BLUE, RED = 0, 2  # channel index of a BGR frame, the order picamera2's "RGB888" and OpenCV deliver


def bgr_frames(count: int, channels: int = 3) -> list[np.ndarray]:
    """Alternating blue / red 48x64 frames (wider than high, so the centre crop matters), BGR order."""
    frames = []
    for i in range(count):
        frame = np.zeros((48, 64, channels), np.uint8)
        frame[:, 8:56, RED if i % 2 else BLUE] = 220  # the colour inside the centre square
        frame[:, :8, BLUE if i % 2 else RED] = 255  # the other colour only outside it
        if channels == 4:
            frame[..., 3] = 255
        frames.append(frame)
    return frames


class StandInPicamera2:
    """Records what the loop asks of the camera; serves ``frames`` from ``capture_array``."""

    cameras: list[dict] = [{"Model": "imx708", "Num": 0, "Location": 2}]
    frames: list[np.ndarray] = []
    opened: list["StandInPicamera2"] = []

    def __init__(self, camera_num: int = 0) -> None:
        if camera_num >= len(self.cameras):
            raise IndexError("list index out of range")
        self.camera_num, self.calls, self.config = camera_num, [], None
        self._next = 0
        StandInPicamera2.opened.append(self)

    @staticmethod
    def global_camera_info() -> list[dict]:
        return list(StandInPicamera2.cameras)

    def create_preview_configuration(self, main=None, **kwargs) -> dict:
        return {"use_case": "preview", "main": {"format": "XBGR8888", "size": (640, 480), **(main or {})}}

    def create_still_configuration(self, main=None, **kwargs) -> dict:
        return {"use_case": "still", "main": {"format": "BGR888", "size": (4608, 2592), **(main or {})}}

    def configure(self, config: dict) -> None:
        self.calls.append("configure")
        self.config = config

    def start(self) -> None:
        assert self.config is not None, "start() before configure()"
        self.calls.append("start")

    def capture_array(self, name: str = "main") -> np.ndarray:
        assert "start" in self.calls and name == "main"
        frame = self.frames[self._next % len(self.frames)].copy()
        self._next += 1
        return frame

    def stop(self) -> None:
        self.calls.append("stop")

    def close(self) -> None:
        self.calls.append("close")


@pytest.fixture
def picamera2(monkeypatch):
    """The stand-in as the ``picamera2`` module; one camera, 12 frames."""
    module = types.ModuleType("picamera2")
    module.Picamera2 = StandInPicamera2
    monkeypatch.setitem(sys.modules, "picamera2", module)
    monkeypatch.setattr(StandInPicamera2, "cameras", [{"Model": "imx708", "Num": 0, "Location": 2}])
    monkeypatch.setattr(StandInPicamera2, "frames", bgr_frames(12))
    monkeypatch.setattr(StandInPicamera2, "opened", [])
    return module


@pytest.fixture
def model(tmp_path) -> Path:
    meta = ModelMetadata(labels=["Healthy", "Unhealthy"], input_size=8, precision="int8")
    return build_tiny_classifier(tmp_path / "tiny.tflite", "uint8", metadata=meta)


def no_module(monkeypatch, name: str) -> None:
    monkeypatch.setitem(sys.modules, name, None)  # `import name` raises ImportError


def json_lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("error:")]


def test_camera_pi_reads_bgr_frames_centre_crops_and_closes(model, picamera2, monkeypatch):
    no_module(monkeypatch, "cv2")  # headless on a Pi: picamera2 alone, no OpenCV needed
    result = runner.invoke(app, ["infer", "--model", str(model), "--camera", "pi", "--no-display",
                                 "--frames", "4", "--json"])
    assert result.exit_code == 0, result.output
    lines = json_lines(result.stdout)
    assert [line["frame"] for line in lines] == [1, 2, 3, 4]
    assert all(line["time"].endswith("+00:00") for line in lines)  # UTC, for a service's log read later
    # blue inside the centre square -> Unhealthy, red -> Healthy: channels swapped to RGB, border cropped off
    assert [line["label"] for line in lines] == ["Unhealthy", "Healthy", "Unhealthy", "Healthy"]
    (camera,) = picamera2.Picamera2.opened
    assert camera.config["main"]["format"] == "RGB888"  # B, G, R in memory: OpenCV's order
    assert camera.calls == ["configure", "start", "stop", "close"]


def test_the_same_loop_gives_the_same_answers_for_picamera2_and_opencv(model, picamera2):
    """Same frames through both sources: identical predictions (same crop, colour order, decision)."""
    classifier = Classifier(model)
    frames = bgr_frames(6)
    queue = iter(frames)
    capture = types.SimpleNamespace(read=lambda: (True, next(queue)), release=lambda: None)  # cv2.VideoCapture's API
    results: dict[str, list] = {"pi": [], "opencv": []}
    run_stream(classifier, "pi", lambda n, p, fps: results["pi"].append(p.probabilities), display=False, max_frames=6)
    run_stream(classifier, OpenCVFrames(capture, "stand-in capture"),
               lambda n, p, fps: results["opencv"].append(p.probabilities), display=False, max_frames=6)
    assert results["pi"] == results["opencv"]
    expected = [classifier.predict(center_crop(np.ascontiguousarray(f[..., ::-1]))).probabilities for f in frames]
    assert results["pi"] == expected


def test_fps_is_the_rate_frames_are_delivered_not_one_over_the_model_time(model):
    """A 25 fps source (serve's paced video) and a model far faster than 40 ms: every frame's
    fps reads about 25, as the page shows it, not 1 / inference time (hundreds)."""
    from artery_edge.edge.serve.live import Paced

    queue = iter(bgr_frames(12))
    capture = types.SimpleNamespace(read=lambda: (True, next(queue)), release=lambda: None)
    rates: list[float] = []
    run_stream(Classifier(model), Paced(OpenCVFrames(capture, "25 fps"), 25.0), lambda n, p, fps: rates.append(fps),
               display=False, max_frames=12)
    assert len(rates) == 12 and all(15 < fps < 30 for fps in rates[2:]), rates


def test_four_channel_frames_are_cut_to_three(model, picamera2, monkeypatch):
    monkeypatch.setattr(StandInPicamera2, "frames", bgr_frames(2, channels=4))
    result = runner.invoke(app, ["infer", "--model", str(model), "--camera", "pi", "--no-display", "--frames", "2",
                                 "--json"])
    assert result.exit_code == 0, result.output
    assert [line["label"] for line in json_lines(result.stdout)] == ["Unhealthy", "Healthy"]


def test_camera_index_falls_back_to_picamera2_when_it_is_the_only_camera(model, picamera2, monkeypatch):
    no_module(monkeypatch, "cv2")
    result = runner.invoke(app, ["infer", "--model", str(model), "--camera", "0", "--no-display", "--frames", "2",
                                 "--json"])
    assert result.exit_code == 0, result.output
    assert len(json_lines(result.stdout)) == 2 and len(picamera2.Picamera2.opened) == 1
    beyond = runner.invoke(app, ["infer", "--model", str(model), "--camera", "1", "--no-display"])
    assert beyond.exit_code == 1 and "OpenCV is not installed" in error_lines(beyond.output)[0]


def test_camera_pi_without_picamera2_is_one_error_line(model, monkeypatch):
    no_module(monkeypatch, "picamera2")
    result = runner.invoke(app, ["infer", "--model", str(model), "--camera", "pi", "--no-display"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    (line,) = error_lines(result.output)
    assert "picamera2 is not installed" in line and "python3-picamera2" in line and "--system-site-packages" in line


def test_camera_pi_that_fails_to_open_is_one_error_line(model, picamera2, monkeypatch):
    monkeypatch.setattr(StandInPicamera2, "cameras", [])
    result = runner.invoke(app, ["infer", "--model", str(model), "--camera", "pi", "--no-display"])
    assert result.exit_code == 1 and error_lines(result.output)[0].startswith("error: cannot open Pi camera 0")


@pytest.mark.parametrize("value", ["-1", "front", "1.5", "٣", "100"])
def test_camera_must_be_an_index_or_pi(model, value):
    result = runner.invoke(app, ["infer", "--model", str(model), "--camera", value, "--no-display"])
    assert result.exit_code == 2 and "--camera must be a camera index from 0 to 99 or pi" in error_lines(result.output)[0]


def test_edge_imports_without_picamera2_or_opencv():
    code = ("import sys; sys.modules['picamera2'] = None; sys.modules['cv2'] = None; "
            "import artery_edge.edge, artery_edge.edge.camera, artery_edge.edge.stream; print('ok')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "ok", done.stderr


@pytest.fixture
def picamera2_built_for_numpy_1(tmp_path, monkeypatch):
    """A picamera2 whose import fails as Debian bookworm's does under NumPy 2 (simplejpeg)."""
    package = tmp_path / "fake_site" / "picamera2"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(
        'raise ValueError("numpy.dtype size changed, may indicate binary incompatibility. '
        'Expected 96 from C header, got 88 from PyObject")\n')
    monkeypatch.syspath_prepend(str(package.parent))
    monkeypatch.delitem(sys.modules, "picamera2", raising=False)


def test_picamera2_broken_by_numpy_2_is_one_error_line_with_the_fix(model, picamera2_built_for_numpy_1):
    result = runner.invoke(app, ["infer", "--model", str(model), "--camera", "pi", "--no-display"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    (line,) = error_lines(result.output)
    assert "numpy.dtype size changed" in line and "pip install --force-reinstall simplejpeg" in line


def test_a_broken_picamera2_does_not_break_a_usb_camera_lookup(model, picamera2_built_for_numpy_1, monkeypatch):
    no_module(monkeypatch, "cv2")
    result = runner.invoke(app, ["infer", "--model", str(model), "--camera", "0", "--no-display"])
    assert result.exit_code == 1 and "OpenCV is not installed" in error_lines(result.output)[0]
