"""Decoding and resizing: the one function every pipeline calls.

The trainer, the INT8 representative dataset and the device runtime all turn an image
into model input through :func:`load_image`, so the pixels a model sees in training
and on the device are identical by construction (TensorFlow's and Pillow's bilinear
resizes differ, most when downscaling). Pillow and NumPy only: no TensorFlow here.

EXIF orientation is applied (``ImageOps.exif_transpose``) when a file or a Pillow image is
decoded: a phone or camera JPEG is seen upright, as every viewer shows it, in training, in
the INT8 calibration set and on the device alike. Files without the tag (PNG patches,
camera frames) are unchanged.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Iterator, Optional, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from artery_edge.edge.errors import ImageError
# also named here, where they were first defined (many readers import them from edge.imaging)
from artery_edge.edge.image_files import (DICOM_EXTENSIONS, MAX_DECODE_BYTES, MAX_IMAGE_PIXELS, RGB_BYTES,  # noqa: F401
                              check_regular_file, describe_os_error, display_path)

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif") + DICOM_EXTENSIONS
# The decoders Pillow may use, whatever a file's name says: a crafted file whose content
# another of Pillow's many plugins recognises is "not a readable image", never decoded.
IMAGE_FORMATS = ("PNG", "JPEG", "BMP", "GIF")
# Images of kinds the pipeline does not read: found in a folder, each is named, not passed over silently.
OTHER_IMAGE_EXTENSIONS = (".tif", ".tiff", ".webp", ".heic", ".jp2", ".dng")
RESIZE_METHOD = "pillow-bilinear"
COLOR_ORDER = "RGB"
INPUT_RANGE = (0.0, 255.0)
# 16-bit grey to 8 bits, rint(v / 65535 * 255), once: a lookup, not a float64 copy of the image
_GRAY16_TO_8 = np.rint(np.arange(65536) / 65535 * 255).astype(np.uint8)

_RESAMPLE = {"pillow-bilinear": Image.Resampling.BILINEAR}
RESIZE_METHODS = tuple(_RESAMPLE)

ImageSource = Union[str, os.PathLike, Image.Image, np.ndarray]


def iter_image_files(root: Path, problems: Optional[list[str]] = None) -> Iterator[Path]:
    """Every entry with an image extension under ``root`` (recursive, sorted, hidden ones skipped).

    Entries that are not regular files (dangling or looping symlinks, FIFOs) are yielded
    too, so that opening them reports each one as a per-file error instead of it vanishing;
    subfolders that cannot be listed, and images of a kind not read (``.tif``...), are named in
    ``problems``.
    """
    found = []

    def unlistable(exc: OSError) -> None:
        if problems is not None:
            problems.append(f"{display_path(exc.filename)}: folder skipped ({describe_os_error(exc)})")

    for folder, dirs, files in os.walk(root, onerror=unlistable):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found += [Path(folder) / name for name in files
                  if Path(name).suffix.lower() in IMAGE_EXTENSIONS and not name.startswith(".")]
        if problems is not None:
            problems += [f"{display_path(Path(folder) / name)}: {Path(name).suffix} images are not read "
                         f"(only {', '.join(IMAGE_EXTENSIONS)}): skipped" for name in sorted(files)
                         if Path(name).suffix.lower() in OTHER_IMAGE_EXTENSIONS and not name.startswith(".")]
    yield from sorted(found)


def to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow mode (palette, grayscale, RGBA, 16-bit, CMYK...) to 8-bit RGB.

    16-bit grayscale is scaled from its full 0..65535 range, not clipped, and alpha is
    dropped (composited on black) the way a plain ``convert("RGB")`` does.
    """
    if image.mode == "RGB":
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        array = np.asarray(image)
        if image.mode == "I" and array.max() <= 255:  # 8-bit values in a 32-bit mode: kept as they are
            gray = np.clip(array, 0, 255).astype(np.uint8)
        else:
            gray = _GRAY16_TO_8[np.clip(array, 0, 65535) if image.mode == "I" else array]
        return Image.fromarray(gray, mode="L").convert("RGB")
    if image.mode == "F":
        gray = np.clip(np.rint(np.asarray(image)), 0, 255).astype(np.uint8)
        return Image.fromarray(gray, mode="L").convert("RGB")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    return image.convert("RGB")


def upright(image: Image.Image) -> Image.Image:
    """The image turned as its EXIF orientation tag says (unchanged without one). A tag that
    cannot be parsed is ignored: the pixels stay as stored, in every pipeline alike."""
    try:
        return ImageOps.exif_transpose(image)
    except Exception:  # noqa: BLE001 - a malformed EXIF block says nothing reliable about orientation
        return image


def open_image(source: Union[str, os.PathLike]) -> Image.Image:
    """Open and fully decode an image file as upright RGB (EXIF orientation applied), or raise
    :class:`ImageError` in one line.

    The pixel limit is checked from the header, before any pixel is decoded. A ``.dcm`` file
    is a single-frame DICOM image (``edge.dicom``).
    """
    path = Path(source)
    shown = display_path(path)
    check_regular_file(path)
    if path.suffix.lower() in DICOM_EXTENSIONS:
        from artery_edge.edge.dicom import dicom_image

        return dicom_image(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit applies below
            image = Image.open(path, formats=IMAGE_FORMATS)
        with image:
            check_decode_size(image, shown)
            image.load()
            return to_rgb(upright(image))
    except ImageError:
        raise
    except Image.DecompressionBombError as exc:  # Pillow's own, far higher limit: it stopped at the header
        found = re.search(r"\((\d+) pixels\)", str(exc))
        size = f"{int(found.group(1)):,} pixels" if found else "too many pixels"
        raise ImageError(f"{shown}: {size} exceeds the {MAX_IMAGE_PIXELS:,}-pixel limit") from None
    except UnidentifiedImageError:
        raise ImageError(f"{shown}: not a readable image ({', '.join(IMAGE_FORMATS)})") from None
    except PermissionError:
        raise ImageError(f"{shown}: permission denied") from None
    except MemoryError:
        raise ImageError(f"{shown}: not enough memory to decode it") from None
    except Exception as exc:  # noqa: BLE001 - any decoder failure is this file's error, never a crash
        raise ImageError(f"{shown}: corrupt or truncated image ({type(exc).__name__}: {exc})".splitlines()[0]) from None


def pixel_bytes(mode: str) -> int:
    """Bytes a pixel of this Pillow mode takes once decoded (Pillow pads 3-band modes to 4)."""
    return 1 if mode in ("1", "L", "P") else 2 if mode.startswith("I;16") else 4


def check_decode_size(image: Image.Image, shown: str) -> None:
    """From the header only: the pixel limit, then the memory the decode and its RGB copy take
    (bit depth and band count, not pixels alone). One :class:`ImageError` line each."""
    width, height = image.size
    if width * height > MAX_IMAGE_PIXELS:
        raise ImageError(f"{shown}: {width}x{height} exceeds the {MAX_IMAGE_PIXELS:,}-pixel limit")
    needed = width * height * (pixel_bytes(image.mode) + (0 if image.mode == "RGB" else RGB_BYTES))
    if needed > MAX_DECODE_BYTES:
        raise ImageError(f"{shown}: {width}x{height} {image.mode} needs about {needed / 1e6:,.0f} MB to decode, over "
                         f"the {MAX_DECODE_BYTES / 1e6:,.0f} MB limit")




def resize_rgb(image: Image.Image, size: int, method: str = RESIZE_METHOD) -> np.ndarray:
    """Resize an RGB image to ``size`` x ``size`` and return it as uint8 HxWx3."""
    if method not in _RESAMPLE:
        raise ValueError(f"unknown resize method {method!r}; known: {', '.join(_RESAMPLE)}")
    if image.size != (size, size):
        image = image.resize((size, size), resample=_RESAMPLE[method])
    return np.asarray(image, dtype=np.uint8)


def rgb_image(source: ImageSource) -> Image.Image:
    """A file, Pillow image or HxWx3 (or HxW grey) array as an upright RGB Pillow image at its own size."""
    if isinstance(source, np.ndarray):
        return to_rgb(Image.fromarray(np.ascontiguousarray(source.astype(np.uint8, copy=False))))
    if isinstance(source, Image.Image):
        return to_rgb(upright(source))
    return open_image(source)


def load_image(source: ImageSource, size: int, method: str = RESIZE_METHOD) -> np.ndarray:
    """Decode a file, Pillow image or HxWx3 RGB array and resize it: uint8 (size, size, 3)."""
    return resize_rgb(rgb_image(source), size, method)
