"""Where frames come from: OpenCV (USB webcams, video files) or picamera2 (a Raspberry Pi camera module).

A Pi camera module is served by libcamera, which OpenCV's ``VideoCapture`` does not read, so it
goes through ``picamera2`` (Raspberry Pi OS: ``apt install python3-picamera2``; a venv needs
``--system-site-packages`` to see it). Both kinds hand the loop in ``edge.stream`` the same thing:
BGR uint8 frames (OpenCV's order, which the overlay is drawn in). Neither library is imported
before it is needed, so ``edge`` imports with only its extra installed.
"""

from __future__ import annotations

import os
from typing import Optional, Protocol, Union

import numpy as np

from artery_edge.edge.errors import EdgeError, OptionError

PI = "pi"  # --camera pi: the Pi camera module through picamera2
PI_FRAME_SIZE = (640, 480)  # plenty for a centre crop resized to the model's input
PICAMERA2_HINT = ("picamera2 is not installed: on Raspberry Pi OS `sudo apt install python3-picamera2` "
                  "and a venv made with --system-site-packages")
OPENCV_HINT = 'OpenCV is not installed: pip install "artery-edge[camera]"'
MAX_CAMERA_INDEX = 99  # OpenCV reads 100 and up as a backend code plus an index (200: camera 0 through V4L2)


def parse_camera(spec: str) -> Union[int, str]:
    """``--camera``: ``pi``, or an index OpenCV takes as a camera's (0-99); anything else is an
    option error (exit 2), never an index OpenCV overflows on or reads as another camera."""
    if spec == PI:
        return PI
    if spec.isascii() and spec.isdigit() and int(spec) <= MAX_CAMERA_INDEX:
        return int(spec)
    raise OptionError(f"--camera must be a camera index from 0 to {MAX_CAMERA_INDEX} or {PI}, not {spec!r}")


class Frames(Protocol):
    """A source of BGR uint8 frames (H x W x 3); ``read`` returns None when it ends."""

    name: str

    def read(self) -> Optional[np.ndarray]: ...

    def close(self) -> None: ...


def import_cv2(required: bool = True):
    """OpenCV, or None when absent and not ``required`` (a Pi camera without display needs none)."""
    os.environ.setdefault("OPENCV_LOG_LEVEL", "OFF")  # keep OpenCV's own warnings off the terminal
    try:
        import cv2
    except ImportError:
        if required:
            raise EdgeError(OPENCV_HINT) from None
        return None
    return cv2


def import_picamera2(required: bool = True):
    """The picamera2 module, or None when absent (or broken) and not ``required``.

    On Raspberry Pi OS bookworm, Debian's picamera2 needs simplejpeg built against NumPy 1.24;
    our edge extra brings NumPy 2 into the venv (ai-edge-litert -> ml_dtypes needs it), and
    then ``import picamera2`` fails with "numpy.dtype size changed" (raspberrypi/picamera2#1088,
    #1211). That is one error line with the fix, not a traceback.
    """
    try:
        import picamera2
    except ImportError:
        if required:
            raise EdgeError(PICAMERA2_HINT) from None
        return None
    except ValueError as exc:  # a compiled dependency built for another NumPy
        if required:
            import numpy

            raise EdgeError(f"picamera2 does not load with NumPy {numpy.__version__} in this venv ({exc}); "
                            f"fix: pip install --force-reinstall simplejpeg (in this venv)") from None
        return None
    return picamera2


class OpenCVFrames:
    """A USB camera or a video file through ``cv2.VideoCapture`` (BGR already)."""

    def __init__(self, capture, name: str, first: Optional[np.ndarray] = None) -> None:
        self.capture, self.name, self._first = capture, name, first

    def read(self) -> Optional[np.ndarray]:
        if self._first is not None:
            frame, self._first = self._first, None
            return frame
        ok, frame = self.capture.read()
        return frame if ok else None

    def close(self) -> None:
        self.capture.release()


class PiCameraFrames:
    """A Pi camera module through picamera2, configured for continuous capture.

    Format ``RGB888`` is, in picamera2's naming, B, G, R in memory: OpenCV's order, so the
    loop treats both kinds alike. A 4-channel format (XBGR8888 ...) is cut to 3 channels.
    """

    def __init__(self, picamera2, index: int = 0, size: tuple[int, int] = PI_FRAME_SIZE) -> None:
        self.name = f"Pi camera {index}"
        try:
            self.camera = picamera2.Picamera2(index)
        except (RuntimeError, IndexError, OSError) as exc:
            raise EdgeError(f"cannot open {self.name}: {exc}") from None
        try:
            self.camera.configure(self.camera.create_preview_configuration(main={"format": "RGB888", "size": size}))
            self.camera.start()
        except (RuntimeError, OSError) as exc:
            self.close()
            raise EdgeError(f"cannot start {self.name}: {exc}") from None

    def read(self) -> Optional[np.ndarray]:
        frame = np.asarray(self.camera.capture_array("main"))
        return np.ascontiguousarray(frame[..., :3]) if frame.ndim == 3 and frame.shape[2] == 4 else frame

    def close(self) -> None:
        for step in ("stop", "close"):
            try:
                getattr(self.camera, step)()
            except Exception:  # noqa: BLE001 - closing a half-opened camera must not hide the first error
                pass


def pi_cameras(picamera2) -> int:
    """How many cameras libcamera sees (0 when it cannot tell)."""
    try:
        return len(picamera2.Picamera2.global_camera_info())
    except Exception:  # noqa: BLE001 - a broken libcamera means no Pi camera, not a crash
        return 0


def open_camera(spec: Union[int, str]) -> Frames:
    """``"pi"``: the Pi camera module. An index: that OpenCV camera when it gives a frame, else,
    when picamera2 sees a camera at that index (a Pi whose only camera is a camera module), that one."""
    if spec == PI:
        return PiCameraFrames(import_picamera2())
    index = int(spec)
    cv2 = import_cv2(required=False)
    if cv2 is not None:
        capture = cv2.VideoCapture(index)
        if capture.isOpened():
            ok, first = capture.read()
            if ok:
                return OpenCVFrames(capture, f"camera {index}", first)
        capture.release()
    picamera2 = import_picamera2(required=False)
    if picamera2 is not None and index < pi_cameras(picamera2):
        return PiCameraFrames(picamera2, index)
    if cv2 is None:
        raise EdgeError(f"{OPENCV_HINT} (a Pi camera module: --camera {PI} with picamera2)")
    raise EdgeError(f"cannot open camera {index}")


def open_video(path: str) -> Frames:
    """A video file through OpenCV, or a DICOM cine (``.dcm``) through ``edge.dicom``, delivered
    at its own frame rate."""
    from artery_edge.edge.dicom import is_dicom, open_cine

    if is_dicom(path):
        return open_cine(path)
    cv2 = import_cv2()
    capture = cv2.VideoCapture(path)
    if not capture.isOpened():
        raise EdgeError(f"cannot open video {path}")
    return OpenCVFrames(capture, f"video {path}")
