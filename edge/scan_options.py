"""``scan``'s options, checked once before any work (a bad value: one ``error:`` line, exit 2)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

from artery_edge.edge.errors import OptionError
from artery_edge.edge.runtime import check_threads
from artery_edge.edge.scan_batch import Persistence



@dataclass(frozen=True)
class ScanOptions:
    paths: tuple[Path, ...]
    model: Optional[Path] = None  # None: the packaged whole-frame model
    threshold: Optional[float] = None  # None: the model's stored one
    out: Optional[Path] = None
    persistence: Optional[Persistence] = None
    frames: Optional[tuple[int, ...]] = None
    max_frames: Optional[int] = None
    threads: Optional[int] = None
    json_output: bool = False

    @classmethod
    def checked(cls, paths: Sequence[Path], model: Optional[Path] = None, threshold: Optional[float] = None,
                out: Optional[Path] = None, persist: Optional[str] = None, frames: Optional[str] = None,
                max_frames: Optional[int] = None, threads: Optional[int] = None,
                json_output: bool = False) -> "ScanOptions":
        """Parse and check every value; raises :class:`OptionError` with the line the user reads."""
        from artery_edge.edge.dicom import parse_frame_numbers

        if not paths:
            raise OptionError("give at least one frame, folder, DICOM file or video to scan")
        if threshold is not None and not 0 < threshold < 1:
            raise OptionError("--threshold must lie strictly between 0 and 1")
        check_threads(threads)
        if max_frames is not None and max_frames < 1:
            raise OptionError("--max-frames must be at least 1")
        if out is not None and out.exists() and not out.is_dir():
            raise OptionError(f"--out {out} is a file, not a folder")
        return cls(tuple(Path(p) for p in paths), model, threshold, out,
                   Persistence.parse(persist) if persist else None,
                   tuple(parse_frame_numbers(frames)) if frames else None, max_frames, threads, json_output)
