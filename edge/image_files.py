"""What every image file passes before a decoder sees it: a regular, non-empty file within the
decode limits, and its name shown as printable text.

Its own module so that both decoders import it without importing each other: ``edge.imaging``
(which hands a ``.dcm`` file to ``edge.dicom``) and ``edge.dicom``. ``edge.imaging`` names all
of it too, where it was first defined.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Union

from artery_edge.edge.errors import ImageError

# .dcm: DICOM, decoded by edge.dicom (the dicom extra) and then taking the same path as the rest.
DICOM_EXTENSIONS = (".dcm",)
# Anything larger is refused as a likely decompression bomb (about 8k x 8k).
MAX_IMAGE_PIXELS = 64_000_000
# What a decode may allocate, from the header: the decoded pixels in their mode plus the RGB copy
# the pipeline makes (Pillow holds RGB at 4 bytes a pixel). 256 MB is a 64 MP 8-bit RGB image; a
# 16-bit grey one costs 6 bytes a pixel, so a 124 KB 7,999 x 7,999 PNG is refused, not decoded.
MAX_DECODE_BYTES = 256_000_000
RGB_BYTES = 4


def check_regular_file(path: Path) -> None:
    """An :class:`ImageError` for a path that is missing, a folder, not a regular file or empty."""
    shown = display_path(path)
    try:
        stat = path.stat()
    except OSError as exc:
        raise ImageError(f"{shown}: {describe_os_error(exc)}") from None
    if path.is_dir():
        raise ImageError(f"{shown}: is a directory, not an image")
    if not path.is_file():
        raise ImageError(f"{shown}: not a regular file")
    if stat.st_size == 0:
        raise ImageError(f"{shown}: empty file (0 bytes)")


def display_path(path: Union[str, os.PathLike]) -> str:
    """A path as printable text: undecodable bytes of a file name shown as escapes, never an error."""
    return os.fsdecode(path).encode("utf-8", "backslashreplace").decode("utf-8")


def describe_os_error(exc: OSError) -> str:
    return {FileNotFoundError: "no such file", PermissionError: "permission denied"}.get(
        type(exc), exc.strerror or type(exc).__name__).lower()
