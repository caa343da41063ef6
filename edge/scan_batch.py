"""Scan many frames: image files, folders, DICOM files (every frame) and videos; keep going
past bad files; optionally keep a lesion in a run of frames only when it persists.

One row schema for ``scan --json``, the overlays ``scan --out`` writes and (with a whole-frame
model) ``serve``'s answers: :func:`scan_row`.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable, Iterator, Optional, Sequence

import numpy as np
from PIL import Image

from artery_edge.edge.dicom import is_dicom, open_dicom
from artery_edge.edge.errors import EdgeError, ImageError, OptionError, PredictionError
from artery_edge.edge.imaging import display_path
from artery_edge.edge.lesions import FoundLesion
from artery_edge.edge.scanner import FrameScan, FrameScanner

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm")


@dataclass
class ScanResult:
    """One frame's outcome: its scan or its error, and where it came from."""

    path: Path
    scan: Optional[FrameScan] = None
    error: Optional[str] = None
    frame: Optional[int] = None  # a video's or DICOM cine's frame (from 1)
    uid: Optional[str] = None  # a DICOM file's SOP Instance UID
    image: Optional[Image.Image] = None  # the frame as scanned (RGB), for the overlay
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Persistence:
    """Keep a lesion only when a lesion overlapped it in at least ``seen`` of the last ``window``
    frames of the same run (itself included): a mark that flickers for one frame is dropped."""

    seen: int
    window: int

    @classmethod
    def parse(cls, spec: str) -> "Persistence":
        """``N/M`` (e.g. ``2/3``); ``1/1`` keeps every lesion."""
        try:
            seen, window = (int(part) for part in spec.split("/"))
        except ValueError:
            raise OptionError(f"--persist must be N/M (a lesion seen in N of the last M frames), not {spec!r}") from None
        if not 1 <= seen <= window <= 100:
            raise OptionError(f"--persist {spec}: need 1 <= N <= M <= 100")
        return cls(seen, window)

    def filter(self) -> "PersistenceFilter":
        return PersistenceFilter(self)


def overlaps(a: Sequence[float], b: Sequence[float]) -> bool:
    return min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1])


class PersistenceFilter:
    """The running state of :class:`Persistence` over one run of frames."""

    def __init__(self, rule: Persistence) -> None:
        self.rule = rule
        self.history: deque[list[FoundLesion]] = deque(maxlen=rule.window - 1)

    def __call__(self, lesions: list[FoundLesion]) -> list[FoundLesion]:
        kept = [lesion for lesion in lesions
                if 1 + sum(any(overlaps(lesion.box, old.box) for old in past) for past in self.history) >= self.rule.seen]
        if self.rule.window > 1:
            self.history.append(lesions)
        return kept


def scan_inputs(scanner: FrameScanner, paths: Iterable[Path], threshold: Optional[float] = None,
                frames: Optional[Sequence[int]] = None, persistence: Optional[Persistence] = None,
                max_frames: Optional[int] = None) -> Iterator[ScanResult]:
    """One result per frame: an image is one frame, a DICOM file or a video each of theirs (a
    cine's ``frames`` only, when given). Runs of frames (a cine, a video) go through
    ``persistence`` when given. An unreadable input becomes an error row, not an exception."""
    for path in paths:
        path = Path(path)
        keep = persistence.filter() if persistence else None
        try:
            for result in scan_path(scanner, path, threshold, frames, max_frames):
                if keep is not None and result.frame is not None and result.scan is not None:
                    result.scan = replace(result.scan, lesions=keep(result.scan.lesions))
                yield result
        except (ImageError, PredictionError, EdgeError) as exc:
            yield ScanResult(path, error=str(exc))


def scan_path(scanner: FrameScanner, path: Path, threshold: Optional[float], frames: Optional[Sequence[int]],
              max_frames: Optional[int]) -> Iterator[ScanResult]:
    if path.suffix.lower() in VIDEO_EXTENSIONS:
        yield from scan_video(scanner, path, threshold, max_frames)
        return
    if not is_dicom(path):
        from artery_edge.edge.imaging import rgb_image

        image = rgb_image(path)
        yield ScanResult(path, scanner.scan(image, threshold), image=image)
        return
    dicom = open_dicom(path)
    notes = dicom.notes
    for number, gray in dicom.read(frames if dicom.frames > 1 else None):
        image = Image.fromarray(gray).convert("RGB")
        yield ScanResult(path, scanner.scan(image, threshold), frame=number if dicom.frames > 1 else None,
                         uid=dicom.uid, image=image, notes=notes)
        notes = ()


def scan_video(scanner: FrameScanner, path: Path, threshold: Optional[float],
               max_frames: Optional[int]) -> Iterator[ScanResult]:
    """Every frame of a video file (OpenCV, the ``camera`` extra); an empty video is an error."""
    from artery_edge.edge.camera import open_video

    video = open_video(str(path))
    number = 0
    try:
        while max_frames is None or number < max_frames:
            frame = video.read()
            if frame is None:
                break
            number += 1
            image = Image.fromarray(np.ascontiguousarray(frame[..., ::-1]))  # OpenCV gives BGR
            yield ScanResult(path, scanner.scan(image, threshold), frame=number, image=image)
    finally:
        video.close()
    if number == 0:
        raise ImageError(f"{display_path(path)}: the video has no frames")


def scan_row(result: ScanResult) -> dict:
    """One frame's row of ``scan --json`` (and of ``serve`` with a whole-frame model)."""
    scan = result.scan
    return {"file": display_path(result.path), "frame": result.frame, "sop_instance_uid": result.uid,
            "lesions": [lesion.as_dict() for lesion in scan.lesions] if scan else None,
            "peak": round(scan.peak, 4) if scan else None,
            "frame_size": list(scan.frame_size) if scan else None,
            "inference_ms": round(scan.inference_ms, 3) if scan else None,
            "total_ms": round(scan.total_ms, 3) if scan else None, "error": result.error}


def scan_document(scanner: FrameScanner, threshold: Optional[float], rows: list[dict], failed: int = 0,
                  problems: Sequence[str] = (), persistence: Optional[Persistence] = None,
                  notes: Sequence[str] = ()) -> dict:
    """The whole ``scan --json`` document (``serve`` answers an upload to a whole-frame model with
    the same one); ``notes`` (how a DICOM file was windowed) only when there are some."""
    return {"model": str(scanner.model_path), "backend": scanner.backend,
            "threshold": threshold if threshold is not None else scanner.threshold,
            "persist": f"{persistence.seen}/{persistence.window}" if persistence else None,
            "results": rows, "failed": failed, "problems": list(problems),
            **({"notes": list(notes)} if notes else {}), **({"warning": scanner.warning} if scanner.warning else {})}


def overlay_name(result: ScanResult) -> str:
    """The overlay's file name: the frame's stem (and frame number), as PNG."""
    stem = Path(result.path).stem
    return f"{stem}_frame{result.frame:04d}.png" if result.frame is not None else f"{stem}.png"
