"""Classify a live camera or a video file frame by frame: one loop, crop and overlay for every
frame source (OpenCV or picamera2, see edge.camera; each imported only when used)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Callable, Optional, Union

import numpy as np

from edge.camera import PI, Frames, import_cv2, open_camera, open_video
from edge.classifier import Classifier, Prediction
from edge.errors import EdgeError, OptionError

CROPS = ("center", "full")


def check_stream_options(max_frames: Optional[int] = None, crop: str = "center", every: int = 1) -> None:
    """Every camera/video option in range, before a model or a source is opened (a bad value is
    the option's fault, never blamed on the video file)."""
    if crop not in CROPS:
        raise OptionError(f"--crop must be one of {', '.join(CROPS)}, not {crop!r}")
    if max_frames is not None and max_frames < 1:
        raise OptionError(f"--frames must be at least 1, not {max_frames}")
    if every < 1:
        raise OptionError(f"--every must be at least 1 (print every Nth frame), not {every}")


@dataclass
class StreamStats:
    frames: int
    seconds: float

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def utc_now() -> str:
    """When a frame was classified, for logs read later (a service appending JSON lines to a file)."""
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def frame_record(number: int, prediction: Prediction, fps: float) -> dict:
    """One classified frame as ``infer --json`` prints it and ``serve`` streams it."""
    return {"frame": number, "time": utc_now(), "label": prediction.label,
            "probabilities": prediction.probabilities, "fps": round(fps, 2)}


def center_crop(frame: np.ndarray) -> np.ndarray:
    """The largest centred square of a frame (the model was trained on square patches)."""
    h, w = frame.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return frame[top : top + side, left : left + side]


def draw_overlay(cv2, frame: np.ndarray, prediction: Prediction, fps: float, positive: str) -> None:
    text = f"{prediction.label}  p({positive})={prediction.positive_probability:.2f}  {fps:.1f} FPS"
    color = (0, 0, 255) if prediction.label == positive else (0, 200, 0)
    cv2.rectangle(frame, (0, 0), (frame.shape[1], 30), (0, 0, 0), -1)
    cv2.putText(frame, text, (8, 21), cv2.FONT_HERSHEY_SIMPLEX, 0.6, color, 2, cv2.LINE_AA)


def run_stream(
    classifier: Classifier,
    source: Union[int, str, os.PathLike, Frames],
    on_prediction: Callable[[int, Prediction, float], None],
    display: bool = True,
    max_frames: Optional[int] = None,
    crop: str = "center",
    threshold: Optional[float] = None,
) -> StreamStats:
    """Read frames until the source ends, ``max_frames`` or ``q`` / Ctrl-C; classify each one.

    ``source``: a camera index, ``"pi"`` (the Pi camera module), a video path (any other
    string or path) or an open ``Frames``. ``on_prediction(frame_number, prediction, fps)``
    is called for every frame.
    """
    check_stream_options(max_frames, crop)
    cv2 = import_cv2() if display else None  # only the window and its overlay need OpenCV
    if isinstance(source, int) or source == PI:
        capture = open_camera(source)
    elif isinstance(source, (str, os.PathLike)):
        capture = open_video(os.fspath(source))
    else:
        capture = source
    frames, fps, start = 0, 0.0, time.perf_counter()
    window = "artery-edge"
    try:
        while max_frames is None or frames < max_frames:
            frame = capture.read()
            if frame is None:
                break
            tick = time.perf_counter()
            rgb = np.ascontiguousarray(frame[..., ::-1])  # BGR -> RGB, as cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            prediction = classifier.predict(center_crop(rgb) if crop == "center" else rgb, threshold)
            frames += 1
            instant = 1.0 / max(time.perf_counter() - tick, 1e-6)
            fps = instant if frames == 1 else 0.9 * fps + 0.1 * instant
            on_prediction(frames, prediction, fps)
            if display:
                draw_overlay(cv2, frame, prediction, fps, classifier.positive_label)
                cv2.imshow(window, frame)
                if cv2.waitKey(1) & 0xFF == ord("q"):
                    break
    except KeyboardInterrupt:
        pass
    finally:
        capture.close()
        if display:
            cv2.destroyAllWindows()
    if frames == 0:
        raise EdgeError(f"no frames could be read from {capture.name}")
    return StreamStats(frames, time.perf_counter() - start)
