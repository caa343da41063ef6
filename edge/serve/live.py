"""The live feed behind ``serve``: infer's camera loop (``edge.stream.run_stream``) in a thread,
the latest frame kept as JPEG for ``/v1/stream`` (with a whole-frame model, the map and boxes
drawn on it), recent decisions kept for the page, and the camera re-opened whenever it is lost
(unplugged, a video that ended), so the service outlives it.

No web library here: the server is told of every decision, frame and state change through one
``publish(kind, data)`` callback, called from the feed's thread.
"""

from __future__ import annotations

import io
import logging
import threading
import time
from collections import deque
from pathlib import Path
from typing import Callable, Optional

import numpy as np
from PIL import Image

from artery_edge.edge.camera import Frames, OpenCVFrames, import_cv2, open_camera, open_video
from artery_edge.edge.classifier import Classifier
from artery_edge.edge.errors import EdgeError
from artery_edge.edge.scanner import FrameScan
from artery_edge.edge.serve.options import Source
from artery_edge.edge.stream import Result, frame_record, lesions_text, marked_frame, run_stream, utc_now

log = logging.getLogger("artery_edge.serve")

JPEG_QUALITY = 80
JPEG_MAX_SIDE = 640  # the page shows the frame small; a smaller JPEG is cheaper to encode and send
WATCH_SECONDS = 5.0  # frames are encoded only while someone asked for the stream this recently
CHART_SECONDS = 300.0  # the page's chart: p(positive) over the last five minutes...
CHART_STEP_SECONDS = 0.5  # ...one point per half second at most (600 points)
RECENT = 20  # the page's table of last decisions
Publish = Callable[[str, dict], None]


class Paced:
    """A video file read at its own frame rate, as a camera would deliver it (not as fast as it decodes)."""

    def __init__(self, frames: Frames, fps: float) -> None:
        self.frames, self.name = frames, frames.name
        self.period = 1.0 / fps if fps > 0 else 0.0
        self._due = time.monotonic()

    def read(self) -> Optional[np.ndarray]:
        self._due = max(self._due + self.period, time.monotonic() - self.period)
        time.sleep(max(0.0, self._due - time.monotonic()))
        return self.frames.read()

    def close(self) -> None:
        self.frames.close()


def source_opener(source: Source) -> Callable[[], Frames]:
    """How to (re-)open a source: a camera index or ``pi`` as infer opens it, a video file (a Path)
    paced (a DICOM cine keeps its own clock)."""
    if not isinstance(source, Path):
        return lambda: open_camera(source)

    def open_paced() -> Frames:
        frames = open_video(str(source))
        if not isinstance(frames, OpenCVFrames):
            return frames
        fps = frames.capture.get(import_cv2().CAP_PROP_FPS)  # 0 when the container does not say
        return Paced(frames, fps if 0 < fps <= 240 else 25.0)

    return open_paced


class Tap:
    """The frames ``run_stream`` reads, with the last one kept (the overlay's frame) and a stop."""

    def __init__(self, frames: Frames, stopping: threading.Event) -> None:
        self.frames, self.name, self.stopping = frames, frames.name, stopping
        self.last: Optional[np.ndarray] = None

    def read(self) -> Optional[np.ndarray]:
        if self.stopping.is_set():
            return None
        self.last = self.frames.read()
        return self.last

    def close(self) -> None:
        self.frames.close()


def encode_jpeg(bgr: np.ndarray) -> bytes:
    image = Image.fromarray(np.ascontiguousarray(bgr[..., ::-1]))
    image.thumbnail((JPEG_MAX_SIDE, JPEG_MAX_SIDE))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=JPEG_QUALITY)
    return out.getvalue()


def chart_point(now: float, result: Result) -> tuple[float, float, str]:
    """One point of the page's chart: p(positive) and the label, or a whole-frame model's peak
    probability and lesion count (the same threshold line applies to both)."""
    if isinstance(result, FrameScan):
        return round(now, 3), round(result.peak, 4), lesions_text(result)
    return round(now, 3), round(result.positive_probability, 4), result.label


class LiveFeed:
    """Classify a frame source continuously in a thread; re-open it after ``retry_s`` when lost
    (doubling up to ``max_retry_s`` while it stays away)."""

    def __init__(self, classifier: Classifier, opener: Callable[[], Frames], publish: Publish,
                 crop: str = "center", retry_s: float = 1.0, max_retry_s: float = 10.0) -> None:
        self.classifier, self.opener, self.publish, self.crop = classifier, opener, publish, crop
        self.retry_s, self.max_retry_s = retry_s, max_retry_s
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._status = {"state": "starting", "source": "", "message": "", "since": utc_now(), "frames": 0, "opened": 0}
        self._recent: deque[dict] = deque(maxlen=RECENT)
        self._chart: deque[tuple[float, float, str]] = deque()
        self._jpeg: Optional[bytes] = None
        self._watched = 0.0
        self._tap: Optional[Tap] = None
        self._thread = threading.Thread(target=self._run, name="artery-edge-live", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self.stopping.set()
        self._thread.join(timeout)

    def status(self) -> dict:
        """The state (starting, live, lost), recent decisions and the chart's points (unix time, p, label)."""
        with self._lock:
            return {**self._status, "recent": list(self._recent), "chart": [list(point) for point in self._chart]}

    def jpeg(self) -> Optional[bytes]:
        """The latest frame as JPEG (None before the first); asking keeps frames being encoded."""
        with self._lock:
            self._watched = time.monotonic()
            return self._jpeg

    def _set_state(self, state: str, message: str, source: str = "") -> None:
        with self._lock:
            self._status.update(state=state, message=message, since=utc_now(), source=source or self._status["source"])
            if state == "live":
                self._status["opened"] += 1
            status = dict(self._status)
        log.log(logging.WARNING if state == "lost" else logging.INFO, "camera %s: %s", state, message)
        self.publish("status", status)

    def _on_prediction(self, number: int, result: Result, fps: float) -> None:
        record = frame_record(number, result, fps)
        now = time.time()
        frame = self._tap.last if self._tap is not None else None
        with self._lock:
            encode = frame is not None and time.monotonic() - self._watched < WATCH_SECONDS
        if encode and isinstance(result, FrameScan):
            frame = marked_frame(frame, result)
        jpeg = encode_jpeg(frame) if encode else None
        with self._lock:
            self._status["frames"] += 1
            self._recent.append(record)
            if not self._chart or now - self._chart[-1][0] >= CHART_STEP_SECONDS:
                self._chart.append(chart_point(now, result))
            while self._chart and now - self._chart[0][0] > CHART_SECONDS:
                self._chart.popleft()
            if jpeg is not None:
                self._jpeg = jpeg
        self.publish("decision", record)
        if jpeg is not None:
            self.publish("frame", {"frame": number})

    def _run(self) -> None:
        delay = self.retry_s
        while not self.stopping.is_set():
            try:
                frames = self.opener()
            except EdgeError as exc:
                self._set_state("lost", f"{exc}; retrying in {delay:g} s")
                self.stopping.wait(delay)
                delay = min(2 * delay, self.max_retry_s)
                continue
            self._tap = Tap(frames, self.stopping)
            self._set_state("live", frames.name, frames.name)
            try:
                stats = run_stream(self.classifier, self._tap, self._on_prediction, display=False, crop=self.crop)
                reason = f"{frames.name} gave no more frames after {stats.frames}"
                delay = self.retry_s
            except EdgeError as exc:  # nothing read, or the model failed on a frame
                reason = str(exc)
            except Exception as exc:  # noqa: BLE001 - a service outlives a bad frame: log the bug, re-open
                log.exception("camera loop failed")
                reason = f"internal error ({type(exc).__name__})"
            if self.stopping.is_set():
                break
            self._set_state("lost", f"{reason}; re-opening in {delay:g} s")
            self.stopping.wait(delay)
        self._set_state("stopped", "server stopping")
