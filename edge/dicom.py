"""DICOM in: grey-scale single- and multi-frame files (XA cine runs, RF, secondary capture...)
read as a viewer shows them, then into the path every image takes (``edge.imaging``).

pydicom decodes (the ``dicom`` extra: pydicom with the pylibjpeg plugins, wheels only); each
frame goes through the Modality LUT (or rescale), then the VOI LUT or window, MONOCHROME1 is
inverted, and the result is scaled to 8 bits. A file whose header has no VOI LUT or window and
more than 8 bits stored is windowed from each frame's own range, and said so in ``notes``.

No patient data leaves: a file is named by its path and its SOP Instance UID only. pydicom's own
warnings and log lines can quote header values, so they never reach a terminal or a log, and
errors are worded here. The header is shown only on request, identifying values masked.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import time
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence, Union

import numpy as np
from PIL import Image

from artery_edge.edge.errors import ImageError, OptionError
from artery_edge.edge.image_files import (DICOM_EXTENSIONS, MAX_DECODE_BYTES, MAX_IMAGE_PIXELS, RGB_BYTES, check_regular_file,
                              display_path)

DICOM_HINT = 'reading DICOM needs the dicom extra: pip install "artery-edge[dicom]"'
# Frames x rows x columns x bytes per pixel as stored: larger is refused from the header, before
# anything is decoded or inflated (the decompression-bomb guard of edge.imaging, for a whole cine).
MAX_DICOM_BYTES = 2**30
# A frame's decode, from the header: its stored pixels, two float64 copies (Modality LUT, VOI) and
# the RGB copy every image becomes, within edge.imaging's decode budget.
FLOAT_COPIES = 2
NO_CLOCK_FPS = 25.0  # a cine whose header names no frame time plays at this rate (as serve plays a video)
MASK = "<masked>"
PIXEL_DATA = 0x7FE00010
# The attributes --show-header prints with their values: what the pixels are and how they are
# shown. Any other attribute (names, IDs, dates, institutions, free text, private tags) is masked.
SHOWN_ATTRIBUTES = frozenset({
    "FileMetaInformationGroupLength", "FileMetaInformationVersion", "MediaStorageSOPClassUID",
    "MediaStorageSOPInstanceUID", "TransferSyntaxUID", "ImplementationClassUID", "ImplementationVersionName",
    "SpecificCharacterSet", "SOPClassUID", "SOPInstanceUID", "Modality", "ImageType", "BurnedInAnnotation",
    "SamplesPerPixel", "PhotometricInterpretation", "Rows", "Columns", "NumberOfFrames", "BitsAllocated",
    "BitsStored", "HighBit", "PixelRepresentation", "PlanarConfiguration", "PixelAspectRatio",
    "LossyImageCompression", "LossyImageCompressionRatio", "LossyImageCompressionMethod",
    "FrameTime", "FrameTimeVector", "FrameIncrementPointer", "CineRate", "RecommendedDisplayFrameRate",
    "FrameDelay", "ActualFrameDuration", "StartTrim", "StopTrim", "PreferredPlaybackSequencing",
    "RescaleSlope", "RescaleIntercept", "RescaleType", "ModalityLUTSequence", "ModalityLUTType",
    "WindowCenter", "WindowWidth", "VOILUTFunction", "VOILUTSequence", "LUTDescriptor", "LUTData",
    "PresentationLUTShape", "SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence",
    "PixelValueTransformationSequence", "FrameVOILUTSequence", "PixelSpacing", "ImagerPixelSpacing",
    "PositionerPrimaryAngle", "PositionerSecondaryAngle",
})
# What the Modality and VOI LUT functions read; an enhanced (functional-group) file carries the
# LUT parts per frame or shared, and they are laid over the top level's for each frame.
_LUT_ATTRIBUTES = ("PhotometricInterpretation", "BitsAllocated", "BitsStored", "PixelRepresentation",
                   "RescaleSlope", "RescaleIntercept", "RescaleType", "ModalityLUTSequence",
                   "WindowCenter", "WindowWidth", "VOILUTFunction", "VOILUTSequence")
_GROUP_LUTS = ("PixelValueTransformationSequence", "FrameVOILUTSequence")
_FRAME_NUMBERS = re.compile(r"\d+(-\d+)?(,\d+(-\d+)?)*")


def is_dicom(path: Union[str, os.PathLike]) -> bool:
    return Path(path).suffix.lower() in DICOM_EXTENSIONS


def looks_like_dicom(data: bytes) -> bool:
    """A DICOM file (Part 10): a 128-byte preamble, then ``DICM``."""
    return data[128:132] == b"DICM"


@functools.cache
def import_pydicom():
    """pydicom, its warnings and log lines kept off every terminal and log (they can quote a
    header's values: a patient's name in an invalid-value warning); None when not installed."""
    try:
        import pydicom
    except ImportError:
        return None
    logging.getLogger("pydicom").propagate = False
    warnings.filterwarnings("ignore", module=r"pydicom(\.|$)")
    return pydicom


def require_pydicom(shown: str):
    pydicom = import_pydicom()
    if pydicom is None:
        raise ImageError(f"{shown}: {DICOM_HINT}")
    return pydicom


def decoder_package(syntax) -> Optional[str]:
    """The pylibjpeg plugin that decodes a compressed transfer syntax (None: pydicom itself, or none)."""
    from pydicom import uid

    if syntax in uid.JPEGTransferSyntaxes or syntax in uid.JPEGLSTransferSyntaxes:
        return "pylibjpeg-libjpeg"
    if syntax in uid.JPEG2000TransferSyntaxes:
        return "pylibjpeg-openjpeg"
    return None


@dataclass(frozen=True)
class DicomFile:
    """One DICOM file's image header, checked; frames are decoded one at a time when read."""

    path: Path
    uid: str  # SOP Instance UID: with the path, the only thing of the header any output names
    frames: int
    rows: int
    columns: int
    delays: Optional[tuple[float, ...]]  # seconds before each frame (the first 0); None: no clock
    notes: tuple[str, ...]
    dataset: Any = field(repr=False)

    @property
    def shown(self) -> str:
        return display_path(self.path)

    @property
    def playback_notes(self) -> tuple[str, ...]:
        """``notes``, and for a cine without a clock the rate it plays at."""
        if self.delays or self.frames == 1:
            return self.notes
        return self.notes + (f"{self.shown}: no frame time (FrameTime, FrameTimeVector, CineRate) in the header: "
                             f"played at {NO_CLOCK_FPS:g} frames/s",)

    def read(self, numbers: Optional[Sequence[int]] = None) -> Iterator[tuple[int, np.ndarray]]:
        """(frame number from 1, uint8 grey H x W) for ``numbers`` (default all), decoded lazily."""
        from pydicom.pixels import iter_pixels

        numbers = list(range(1, self.frames + 1)) if numbers is None else list(numbers)
        missing = [n for n in numbers if not 1 <= n <= self.frames]
        if missing:
            raise ImageError(f"{self.shown}: has {self.frames} frame(s), no frame {missing[0]}")
        decoded = iter_pixels(self.dataset, indices=[n - 1 for n in numbers])
        for number in numbers:
            try:
                raw = next(decoded)
            except Exception as exc:  # noqa: BLE001 - any decoder failure is this frame's error, never a crash
                reason = " ".join(line.strip() for line in str(exc).splitlines()) or type(exc).__name__
                raise ImageError(f"{self.shown}: frame {number}: cannot decode it ({reason[:400]})") from None
            yield number, to_gray8(raw, frame_view(self.dataset, number - 1))


def open_dicom(path: Union[str, os.PathLike]) -> DicomFile:
    """Read and check a DICOM file's header (nothing is decoded): one :class:`ImageError` line
    for a file that is not DICOM, holds no image, is truncated, colour, too large or in a
    transfer syntax no installed plugin decodes (the line names the package)."""
    path = Path(path)
    shown = display_path(path)
    check_regular_file(path)
    pydicom = require_pydicom(shown)
    from pydicom.errors import InvalidDicomError

    try:
        meta = pydicom.filereader.read_file_meta_info(path)
        check_deflated(path, meta, shown)
        ds = pydicom.dcmread(path, defer_size="1 MB")
    except ImageError:
        raise
    except InvalidDicomError:
        raise ImageError(f"{shown}: not a DICOM file (no 'DICM' marker after the 128-byte preamble)") from None
    except PermissionError:
        raise ImageError(f"{shown}: permission denied") from None
    except Exception as exc:  # noqa: BLE001 - a header pydicom cannot parse is this file's error
        raise ImageError(f"{shown}: corrupt or truncated DICOM header ({type(exc).__name__})") from None
    if not len(ds):  # pydicom keeps nothing of a data set whose encapsulated pixel data ends early
        raise ImageError(f"{shown}: corrupt or truncated: its data set ends before it is complete")
    frames = check_image_header(ds, shown)
    check_decodable(ds, shown)
    check_pixel_length(ds, frames, shown)
    return DicomFile(path, str(ds.get("SOPInstanceUID", "")), frames, int(ds.Rows), int(ds.Columns),
                     frame_delays(ds, frames), header_notes(ds, shown), ds)


def header_notes(ds, shown: str) -> tuple[str, ...]:
    """What the user should know of how the frames are shown: windowed from their own range, or
    carrying text burned into the pixels (which an overlay or the live view then shows too)."""
    notes = []
    if not has_voi(frame_view(ds, 0)) and int(ds.BitsStored) > 8:
        notes.append(f"{shown}: no VOI LUT or window in the header: each frame is windowed from its own darkest "
                     "to brightest pixel")
    if str(ds.get("BurnedInAnnotation", "")).strip().upper() == "YES":
        notes.append(f"{shown}: BurnedInAnnotation YES: the pixels carry text (possibly identifying), which "
                     "overlays and the live view show as they are")
    return tuple(notes)


def check_deflated(path: Path, meta, shown: str) -> None:
    """A deflated data set is inflated whole by pydicom: refused first if it would inflate past
    the byte limit (a deflate bomb), counted by inflating a megabyte at a time and dropping it."""
    from pydicom.uid import DeflatedExplicitVRLittleEndian

    if meta.get("TransferSyntaxUID") != DeflatedExplicitVRLittleEndian:
        return
    if "FileMetaInformationGroupLength" not in meta:
        raise ImageError(f"{shown}: corrupt DICOM header (deflated, without a file meta group length)")
    inflater, inflated = zlib.decompressobj(-zlib.MAX_WBITS), 0
    with open(path, "rb") as handle:
        handle.seek(128 + 4 + 12 + int(meta.FileMetaInformationGroupLength))  # preamble, DICM, group length
        for block in iter(lambda: handle.read(2**20), b""):
            while block:
                try:
                    inflated += len(inflater.decompress(block, 2**20))
                except zlib.error:
                    raise ImageError(f"{shown}: corrupt deflated DICOM data set") from None
                if inflated > MAX_DICOM_BYTES:
                    raise ImageError(f"{shown}: the deflated data set inflates past the {MAX_DICOM_BYTES:,}-byte limit")
                block = inflater.unconsumed_tail


def check_image_header(ds, shown: str) -> int:
    """The number of frames of a grey-scale image small enough to decode, else an ImageError."""
    from pydicom.uid import MediaStorageDirectoryStorage

    if ds.file_meta.get("MediaStorageSOPClassUID") == MediaStorageDirectoryStorage or "DirectoryRecordSequence" in ds:
        raise ImageError(f"{shown}: a DICOMDIR (an index of other files), not an image: give the files it lists")
    if "PixelData" not in ds:
        if "Rows" in ds:
            raise ImageError(f"{shown}: corrupt or truncated: the header describes an image but no pixel data follows")
        what = getattr(ds.get("SOPClassUID"), "name", "")
        raise ImageError(f"{shown}: no pixel data ({'a ' + what + ', ' if what else ''}not an image)")
    for keyword in ("Rows", "Columns", "BitsAllocated", "BitsStored", "PhotometricInterpretation"):
        if ds.get(keyword) in (None, ""):
            raise ImageError(f"{shown}: incomplete image header (no {keyword})")
    colour = str(ds.PhotometricInterpretation).strip()
    if colour not in ("MONOCHROME1", "MONOCHROME2") or int(ds.get("SamplesPerPixel", 1)) != 1:
        raise ImageError(f"{shown}: colour frames ({colour}): only grey-scale (MONOCHROME1 / MONOCHROME2) "
                         "DICOM is read")
    if "TransferSyntaxUID" not in ds.file_meta:
        raise ImageError(f"{shown}: corrupt DICOM header (no transfer syntax in its file meta)")
    try:
        frames = int(ds.get("NumberOfFrames") or 1)
    except (TypeError, ValueError):
        raise ImageError(f"{shown}: corrupt image header (NumberOfFrames is not a number)") from None
    rows, columns, bits = int(ds.Rows), int(ds.Columns), int(ds.BitsAllocated)
    if min(frames, rows, columns, bits) < 1:
        raise ImageError(f"{shown}: corrupt image header ({frames} frame(s) of {columns}x{rows} at {bits} bits)")
    if rows * columns > MAX_IMAGE_PIXELS:
        raise ImageError(f"{shown}: {columns}x{rows} frames exceed the {MAX_IMAGE_PIXELS:,}-pixel limit")
    per_frame = rows * columns * (-(-bits // 8) + FLOAT_COPIES * 8 + RGB_BYTES)
    if per_frame > MAX_DECODE_BYTES:
        raise ImageError(f"{shown}: {columns}x{rows} frames need about {per_frame / 1e6:,.0f} MB each to decode, "
                         f"over the {MAX_DECODE_BYTES / 1e6:,.0f} MB limit")
    size = -(-frames * rows * columns * bits // 8)
    if size > MAX_DICOM_BYTES:
        raise ImageError(f"{shown}: {frames} frame(s) of {columns}x{rows} at {bits} bits are {size:,} bytes, "
                         f"over the {MAX_DICOM_BYTES:,}-byte limit")
    return frames


def check_decodable(ds, shown: str) -> None:
    """A transfer syntax no installed plugin decodes is named, with the package that would."""
    from pydicom.pixels import get_decoder

    syntax = ds.file_meta.TransferSyntaxUID
    try:
        decoder = get_decoder(syntax)
    except NotImplementedError:
        raise ImageError(f"{shown}: no decoder reads {syntax.name or syntax} pixel data; convert the file to "
                         "an uncompressed, RLE, JPEG or JPEG 2000 transfer syntax first") from None
    if not decoder.is_available:
        package = decoder_package(syntax) or "pylibjpeg"
        raise ImageError(f"{shown}: {syntax.name} pixel data needs a decoder: pip install pylibjpeg {package} "
                         f'(both come with pip install "artery-edge[dicom]")')


def check_pixel_length(ds, frames: int, shown: str) -> None:
    """Truncated pixel data is refused whole, before a first frame is shown."""
    from pydicom.encaps import generate_frames

    if not ds.file_meta.TransferSyntaxUID.is_compressed:
        expected = -(-frames * int(ds.Rows) * int(ds.Columns) * int(ds.BitsAllocated) // 8)
        if len(ds.PixelData) < expected:
            raise ImageError(f"{shown}: truncated: {len(ds.PixelData):,} of {expected:,} bytes of pixel data")
        return
    try:
        found = sum(1 for _ in generate_frames(ds.PixelData, number_of_frames=frames))
    except Exception:  # noqa: BLE001 - fragments that cannot be split are a damaged file
        found = 0
    if found < frames:
        raise ImageError(f"{shown}: truncated or corrupt: {found} of {frames} compressed frame(s) found")


def frame_view(ds, index: int):
    """The attributes the LUT functions read for frame ``index``: the data set itself, or for an
    enhanced file its shared and per-frame functional groups laid over it."""
    from pydicom.dataset import Dataset

    groups = [sequence[min(index, len(sequence) - 1)] for sequence in
              (ds.get("SharedFunctionalGroupsSequence"), ds.get("PerFrameFunctionalGroupsSequence")) if sequence]
    if not any(group.get(name) for group in groups for name in _GROUP_LUTS):
        return ds
    view = Dataset()
    view.file_meta = ds.file_meta
    for keyword in _LUT_ATTRIBUTES:
        if keyword in ds:
            view[keyword] = ds[keyword]
    for group in groups:
        for name in _GROUP_LUTS:
            if group.get(name):
                view.update(group[name][0])
    return view


def has_voi(view) -> bool:
    """A VOI LUT or a window the frame is shown through (as pydicom's apply_voi_lut decides)."""
    lut = view.get("VOILUTSequence")
    return bool(lut and "LUTDescriptor" in lut[0] and "LUTData" in lut[0]) or (
        view.get("WindowCenter") is not None and view.get("WindowWidth") is not None)


def to_gray8(raw: np.ndarray, view) -> np.ndarray:
    """Stored values -> uint8 grey as a viewer shows them: Modality LUT, VOI LUT or window (its
    output range to 0..255), MONOCHROME1 inverted. Without a VOI: up to 8 bits stored, the
    values' whole range; more, the frame's own darkest to brightest pixel."""
    from pydicom.pixels import apply_modality_lut, apply_voi, apply_windowing

    values = apply_modality_lut(raw, view)
    lut = view.get("VOILUTSequence")
    if lut and "LUTDescriptor" in lut[0] and "LUTData" in lut[0]:
        values, low, high = apply_voi(values, view), 0.0, float(2 ** int(lut[0].LUTDescriptor[2]) - 1)
    elif has_voi(view):
        values = apply_windowing(values, view)
        with np.errstate(over="ignore"):  # the far ends: the window's output range, as pydicom sets it
            low, high = sorted(float(v) for v in apply_windowing(np.array([-1e300, 1e300]), view))
    elif int(view.BitsStored) <= 8:
        signed = int(view.get("PixelRepresentation", 0)) == 1
        stored = np.array([-(2 ** (int(view.BitsStored) - 1)), 2 ** (int(view.BitsStored) - 1) - 1] if signed
                          else [0, 2 ** int(view.BitsStored) - 1], dtype=np.int64)
        low, high = sorted(float(v) for v in apply_modality_lut(stored, view))
    else:
        low, high = float(np.min(values)), float(np.max(values))
    scaled = (np.asarray(values, dtype=np.float64) - low) * (255.0 / (high - low) if high > low else 0.0)
    gray = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
    return 255 - gray if str(view.PhotometricInterpretation).strip() == "MONOCHROME1" else gray


def number(value) -> Optional[float]:
    """A header value as a positive float, or None (absent, empty, zero or not a number)."""
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    return result if result > 0 and np.isfinite(result) else None


def frame_delays(ds, frames: int) -> Optional[tuple[float, ...]]:
    """The cine's own clock: seconds before each frame, from FrameTimeVector (when the frame
    increment pointer names it, or there is no FrameTime), FrameTime, CineRate or
    RecommendedDisplayFrameRate; None when the header has none."""
    from pydicom.multival import MultiValue

    def values(keyword: str) -> list:
        value = ds.get(keyword)
        return [] if value is None else list(value) if isinstance(value, MultiValue) else [value]

    times = [number(t) or 0.0 for t in values("FrameTimeVector")]
    period = number(ds.get("FrameTime"))
    if len(times) == frames and (0x00181065 in values("FrameIncrementPointer") or period is None):
        return tuple(t / 1000 for t in [0.0] + times[1:])
    if period is not None:
        return (0.0,) + (period / 1000,) * (frames - 1)
    rate = number(ds.get("CineRate")) or number(ds.get("RecommendedDisplayFrameRate"))
    return (0.0,) + (1 / rate,) * (frames - 1) if rate else None


def dicom_image(path: Union[str, os.PathLike]) -> Image.Image:
    """A single-frame DICOM file as an RGB image (what ``edge.imaging.open_image`` returns); a
    cine is refused, since one image is wanted (``infer --image`` gives one result per frame)."""
    dicom = open_dicom(path)
    if dicom.frames != 1:
        raise ImageError(f"{dicom.shown}: {dicom.frames} frames where one image is needed "
                         "(infer --image gives one result per frame)")
    _, gray = next(dicom.read())
    return Image.fromarray(gray, mode="L").convert("RGB")


class DicomFrames:
    """A DICOM cine as a frame source (``edge.camera.Frames``): each frame grey in BGR order,
    delivered at the file's own frame rate, as a camera delivers frames."""

    def __init__(self, dicom: DicomFile) -> None:
        self.dicom = dicom
        self.name = f"DICOM {dicom.shown} (SOP Instance UID {dicom.uid or 'none'})"
        self.delays = dicom.delays or (0.0,) + (1 / NO_CLOCK_FPS,) * (dicom.frames - 1)
        self.notes = dicom.playback_notes
        self._frames = dicom.read()
        self._next = 0
        self._due: Optional[float] = None

    def read(self) -> Optional[np.ndarray]:
        _, gray = next(self._frames, (0, None))
        if gray is None:
            return None
        delay = self.delays[self._next]
        self._next += 1
        now = time.monotonic()
        self._due = now if self._due is None else max(self._due + delay, now - delay)
        time.sleep(max(0.0, self._due - now))
        return np.repeat(gray[:, :, np.newaxis], 3, axis=2)

    def close(self) -> None:
        self._frames.close()


def open_cine(path: Union[str, os.PathLike]) -> DicomFrames:
    return DicomFrames(open_dicom(path))


def parse_frame_numbers(spec: str) -> list[int]:
    """``--frames`` of ``infer --image``: frame numbers from 1 and ranges, e.g. ``1,4-6``."""
    text = spec.replace(" ", "")
    if not _FRAME_NUMBERS.fullmatch(text):
        raise OptionError(f"--frames must be frame numbers from 1 and ranges, e.g. 1,4-6, not {spec!r}")
    chosen: set[int] = set()
    for part in text.split(","):
        first, _, last = part.partition("-")
        low, high = int(first), int(last or first)
        if low < 1 or high < low:
            raise OptionError(f"--frames must be frame numbers from 1 and ranges, e.g. 1,4-6, not {spec!r}")
        chosen.update(range(low, high + 1))
    return sorted(chosen)


def header_lines(dicom: DicomFile) -> list[str]:
    """``--show-header``: the file's attributes, one a line, every value masked but those of
    :data:`SHOWN_ATTRIBUTES` (what the pixels are and how they are shown)."""
    return list(masked_lines(dicom.dataset.file_meta, 0)) + list(masked_lines(dicom.dataset, 0))


def masked_lines(ds, depth: int) -> Iterator[str]:
    indent = "  " * depth
    for tag in ds.keys():
        if tag == PIXEL_DATA:  # its size says enough
            yield f"{indent}{tag} PixelData: {len(ds[tag].value):,} bytes"
            continue
        element = ds[tag]
        name = element.keyword or ("private" if element.tag.is_private else "unknown")
        if element.VR == "SQ":
            yield f"{indent}{element.tag} {name} SQ: {len(element.value)} item(s)"
            for item in element.value:
                yield from masked_lines(item, depth + 1)
        elif element.keyword in SHOWN_ATTRIBUTES and not element.tag.is_private:
            yield f"{indent}{element.tag} {name} {element.VR}: {element.repval}"
        else:
            yield f"{indent}{element.tag} {name} {element.VR}: {MASK}"
