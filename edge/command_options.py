"""The options of ``infer``, ``benchmark`` and ``inspect``, each checked once before any work.

A value out of range, or an option that means nothing with the others given, is one
``error:`` line and exit 2 (:class:`OptionError`), never blamed on a file or the model; only
then does the packaged reference model stand in for a missing ``--model`` (said on stderr).
Light imports only: the CLI reads :data:`REPORT_IMAGES` when it starts.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Sequence, Union

from artery_edge.edge.errors import OptionError
from artery_edge.edge.precisions import FLOAT_REFERENCE
from artery_edge.edge.runtime import check_threads

if TYPE_CHECKING:
    from artery_edge.edge.scan_batch import Persistence

Source = Union[int, str, Path]  # a camera index, "pi" (the Pi camera module) or a video file
REPORT_IMAGES = 8  # inspect --report: images compared by default


def parse_labels(labels: Optional[str]) -> Optional[list[str]]:
    """``A, B`` -> ``["A", "B"]``; None when not given (an empty name stays, for the checks to refuse)."""
    return None if labels is None else [label.strip() for label in labels.split(",")]


def model_or_reference(model: Optional[Path]) -> Path:
    """The model given, else the packaged reference model, said on stderr so no one mistakes it for their own."""
    if model is not None:
        return model
    from artery_edge.edge.printers import say
    from artery_edge.edge.reference import packaged_reference

    path = packaged_reference()
    say(f"no --model given: using the packaged reference model {path}")
    return path


def display_available() -> bool:
    """A window can open: always on Windows/macOS, on Linux only with an X11 or Wayland display."""
    return not sys.platform.startswith("linux") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def stream_source(image: bool, camera: Optional[str], video: Optional[Path], csv_file: Optional[Path],
                  every: Optional[int], persist: Optional[str]) -> Optional[Source]:
    """The camera or video to stream (None with --image), once the options that belong to one
    kind of source are checked against the one given."""
    from artery_edge.edge.camera import parse_camera

    if sum([image, camera is not None, video is not None]) != 1:
        raise OptionError("give exactly one of --image, --camera or --video")
    if csv_file is not None and not image:
        raise OptionError("--csv applies to --image only (use --json for camera/video results)")
    if image and every is not None:
        raise OptionError("--every applies to --camera / --video only")
    if image and persist is not None:
        raise OptionError("--persist applies to --camera / --video (files: scan --persist)")
    return None if image else video if camera is None else parse_camera(camera)


def frame_options(image: bool, frames: Optional[str]) -> tuple[Optional[list[int]], Optional[int]]:
    """``--frames``: with --image the frame numbers of each DICOM cine, else a number of frames."""
    from artery_edge.edge.dicom import parse_frame_numbers

    if frames is None:
        return None, None
    if image:
        return parse_frame_numbers(frames), None
    try:
        return None, int(frames)
    except ValueError:
        raise OptionError(f"--frames must be a number of frames for --camera / --video, not {frames!r}") from None


@dataclass(frozen=True)
class InferOptions:
    """``infer``: image files (a table, JSON, a CSV), or a camera or video streamed."""

    model: Path
    images: tuple[Path, ...] = ()
    source: Optional[Source] = None  # the camera or video; None with --image
    labels: Optional[list[str]] = None
    threshold: Optional[float] = None  # None: the model's stored operating point
    threads: Optional[int] = None
    json_output: bool = False
    csv_file: Optional[Path] = None
    crop: str = "center"
    display: bool = True
    every: int = 1
    frame_numbers: Optional[list[int]] = None  # --image: the frames of each DICOM cine (None: all)
    max_frames: Optional[int] = None  # camera/video: stop after these
    show_header: bool = False
    persistence: Optional[Persistence] = None

    @classmethod
    def checked(cls, model: Optional[Path], image: Optional[Sequence[Path]], camera: Optional[str],
                video: Optional[Path], labels: Optional[str], threshold: Optional[float], threads: Optional[int],
                json_output: bool, csv_file: Optional[Path], crop: str, display: bool, every: Optional[int],
                frames: Optional[str], show_header: bool, persist: Optional[str]) -> "InferOptions":
        """Parse and check every value, in the order a user reads the refusals."""
        from artery_edge.edge.model_record import check_threshold
        from artery_edge.edge.scan_batch import Persistence
        from artery_edge.edge.stream import check_stream_options

        source = stream_source(bool(image), camera, video, csv_file, every, persist)
        if threshold is not None:
            check_threshold(threshold, "--threshold", OptionError)
        check_threads(threads)
        picked, limit = frame_options(bool(image), frames)
        check_stream_options(limit, crop, 1 if every is None else every)
        persistence = Persistence.parse(persist) if persist else None
        if source is not None and display and not display_available():
            raise OptionError("no display found (DISPLAY / WAYLAND_DISPLAY unset): add --no-display")
        return cls(model_or_reference(model), tuple(image or ()), source, parse_labels(labels), threshold, threads,
                   json_output, csv_file, crop, display, every or 1, picked, limit, show_header, persistence)


@dataclass(frozen=True)
class BenchmarkOptions:
    """``benchmark``: the models timed side by side and how."""

    models: tuple[Path, ...]
    runs: int = 100
    warmup: int = 10
    threads: Optional[int] = None
    labels: Optional[list[str]] = None
    frame: Optional[Path] = None  # whole-frame models: the frame their scan is timed on

    @classmethod
    def checked(cls, models: Optional[Sequence[Path]], runs: int, warmup: int, threads: Optional[int],
                labels: Optional[str], frame: Optional[Path]) -> "BenchmarkOptions":
        """Counts and threads in range, and each model a .tflite file, before any benchmark process starts."""
        from artery_edge.edge.metadata import read_model_bytes

        if runs < 1 or warmup < 0:
            raise OptionError("--runs must be >= 1 and --warmup >= 0")
        check_threads(threads)
        models = tuple(models) if models else (model_or_reference(None),)
        for path in models:
            read_model_bytes(path)
        return cls(models, runs, warmup, threads, parse_labels(labels), frame)


@dataclass(frozen=True)
class InspectOptions:
    """``inspect``: a summary of the model, or with ``report`` its per-layer error against its float32 twin."""

    model: Path
    report: bool = False
    reference: Optional[Path] = None  # None: the float32 twin next to the model
    data: Optional[Path] = None
    count: int = REPORT_IMAGES
    out: Optional[Path] = None  # None: a new folder next to the model

    @classmethod
    def checked(cls, model: Optional[Path], report: bool, reference: Optional[Path], data: Optional[Path],
                count: Optional[int], out: Optional[Path]) -> "InspectOptions":
        """The report's options refused without --report (they would be ignored)."""
        if count is not None and count < 1:
            raise OptionError("--count must be at least 1")
        if not report and (reference is not None or data is not None or out is not None or count is not None):
            raise OptionError("--reference, --data, --count and --out apply to --report only")
        return cls(model_or_reference(model), report, reference, data, count or REPORT_IMAGES, out)

    @property
    def twin(self) -> Path:
        return self.reference or FLOAT_REFERENCE.file(self.model.parent)

    @property
    def folder(self) -> Path:
        return self.out or self.model.parent / f"{self.model.stem}_layer_report"
