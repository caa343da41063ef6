"""Classify a live camera or a video file frame by frame: one loop, crop and overlay for every
frame source (OpenCV or picamera2, see edge.camera; each imported only when used). With a
whole-frame model (``edge.scanner``) the same loop scans each frame for lesions and draws them."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace
from typing import Callable, Optional, Union

import numpy as np
from PIL import Image

from artery_edge.edge.camera import PI, Frames, import_cv2, open_camera, open_video
from artery_edge.edge.classifier import Classifier, Prediction
from artery_edge.edge.errors import EdgeError, OptionError
from artery_edge.edge.lesions import boxes_text
from artery_edge.edge.overlay import draw_scan
from artery_edge.edge.scan_batch import Persistence
from artery_edge.edge.scanner import FrameScan, FrameScanner

CROPS = ("center", "full")
Result = Union[Prediction, FrameScan]  # a patch classifier's decision, or a whole-frame model's lesions


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


def frame_record(number: int, result: Result, fps: float) -> dict:
    """One frame as ``infer --json`` prints it and ``serve`` streams it: the decision, or a
    whole-frame model's lesions with ``scan --json``'s keys (boxes in the frame's pixels)."""
    if isinstance(result, FrameScan):
        found = {"lesions": [lesion.as_dict() for lesion in result.lesions], "peak": round(result.peak, 4),
                 "frame_size": list(result.frame_size)}
    else:
        found = {"label": result.label, "probabilities": result.probabilities}
    return {"frame": number, "time": utc_now(), **found, "fps": round(fps, 2)}


def lesions_text(scan: FrameScan) -> str:
    """What the window and ``infer``'s lines say of a scanned frame: "no lesion", "2 lesions"."""
    count = len(scan.lesions)
    return "no lesion" if count == 0 else f"{count} lesion{'s' if count > 1 else ''}"


def frame_text(number: int, result: Result, fps: float, positive: str) -> str:
    """``infer``'s line for one live frame without --json."""
    if isinstance(result, FrameScan):
        boxes = boxes_text(result.lesions)
        return (f"frame {number}: {lesions_text(result)} peak {result.peak:.3f} {fps:.1f} FPS"
                f"{'  ' + boxes if boxes else ''}")
    return f"frame {number}: {result.label} p({positive})={result.positive_probability:.3f} {fps:.1f} FPS"


def center_square(frame: np.ndarray) -> tuple[int, int, int, int]:
    """The largest centred square of a frame, (x0, y0, x1, y1): the models were trained on
    squares (patches, or whole frames resized without keeping a camera's 4:3)."""
    h, w = frame.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return left, top, left + side, top + side


def center_crop(frame: np.ndarray) -> np.ndarray:
    x0, y0, x1, y1 = center_square(frame)
    return frame[y0:y1, x0:x1]


def look(model: Classifier, rgb: np.ndarray, crop: str, threshold: Optional[float]) -> Result:
    """One RGB frame through the model: a patch classifier classifies the crop; a whole-frame
    model scans the crop within the frame, so its boxes are in the frame's own pixels."""
    if isinstance(model, FrameScanner):
        return model.scan(rgb, threshold, center_square(rgb) if crop == "center" else None)
    return model.predict(center_crop(rgb) if crop == "center" else rgb, threshold)


def marked_frame(frame: np.ndarray, scan: FrameScan) -> np.ndarray:
    """A BGR frame with its scan drawn on it (``draw_scan``: map, boxes, scores), for the
    window and the served stream alike."""
    return np.asarray(draw_scan(Image.fromarray(np.ascontiguousarray(frame[..., ::-1])), scan))[..., ::-1]


def draw_overlay(cv2, frame: np.ndarray, result: Result, fps: float, positive: str) -> None:
    """The window's picture, drawn on ``frame`` in place: a top line with the decision (or the
    lesions, with the map and boxes drawn) and the frame rate."""
    if isinstance(result, FrameScan):
        frame[...] = marked_frame(frame, result)
        text = f"{lesions_text(result)}  peak {result.peak:.2f}  {fps:.1f} FPS"
        color = (0, 0, 255) if result.lesions else (0, 200, 0)
    else:
        text = f"{result.label}  p({positive})={result.positive_probability:.2f}  {fps:.1f} FPS"
        color = (0, 0, 255) if result.label == positive else (0, 200, 0)
    cv2.rectangle(frame, (0, 0), (frame.shape[1], 30), (0, 0, 0), -1)
    cv2.putText(frame, text, (8, 21), cv2.FONT_HERSHEY_SIMPLEX, 0.6, color, 2, cv2.LINE_AA)


def run_stream(
    classifier: Classifier,
    source: Union[int, str, os.PathLike, Frames],
    on_prediction: Callable[[int, Result, float], None],
    display: bool = True,
    max_frames: Optional[int] = None,
    crop: str = "center",
    threshold: Optional[float] = None,
    persistence: Optional[Persistence] = None,
) -> StreamStats:
    """Read frames until the source ends, ``max_frames`` or ``q`` / Ctrl-C; classify (or, with a
    :class:`FrameScanner`, scan) each one.

    ``source``: a camera index, ``"pi"`` (the Pi camera module), a video path (any other
    string or path) or an open ``Frames``. ``on_prediction(frame_number, result, fps)``
    is called for every frame; ``fps`` is a running average of the frames handled per second
    (reading included: a source's own rate when the model keeps up). ``persistence``: a whole-frame model's lesions are kept only
    when seen in N of the last M frames of this run.
    """
    check_stream_options(max_frames, crop)
    keep = persistence.filter() if persistence is not None else None
    cv2 = import_cv2() if display else None  # only the window and its overlay need OpenCV
    if isinstance(source, int) or source == PI:
        capture = open_camera(source)
    elif isinstance(source, (str, os.PathLike)):
        capture = open_video(os.fspath(source))
    else:
        capture = source
    frames, fps, start = 0, 0.0, time.perf_counter()
    last = start
    window = "artery-edge"
    try:
        while max_frames is None or frames < max_frames:
            frame = capture.read()
            if frame is None:
                break
            rgb = np.ascontiguousarray(frame[..., ::-1])  # BGR -> RGB, as cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            result = look(classifier, rgb, crop, threshold)
            if keep is not None and isinstance(result, FrameScan):
                result = replace(result, lesions=keep(result.lesions))
            frames += 1
            now = time.perf_counter()  # the rate frames are delivered (a 25 fps video: 25), not 1 / model time
            instant, last = 1.0 / max(now - last, 1e-6), now
            fps = instant if frames == 1 else 0.9 * fps + 0.1 * instant
            on_prediction(frames, result, fps)
            if display:
                draw_overlay(cv2, frame, result, fps, classifier.positive_label)
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
