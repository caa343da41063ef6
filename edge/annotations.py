"""Whole frames and their lesions: one loader for COCO (``annotations.json``) and Pascal VOC (``.xml``).

The trainer (targets), the evaluation (truth) and ``scan --truth`` read frames through
:func:`load_frames`, so a box means the same thing everywhere. TensorFlow-free: Pillow draws
the targets, ``json`` and ``xml.etree`` read the files (no compiled COCO API needed on a device).

A folder is a COCO dataset when it holds ``annotations.json`` (images under ``images/`` or
beside it); otherwise each image is a VOC frame, with its boxes in the ``.xml`` of the same
name. A COCO image without annotations, or a VOC image without an ``.xml`` (or one with no
``object``), is a frame without lesions: a negative.
"""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from PIL import Image, ImageDraw

from artery_edge.edge.errors import EdgeError
from artery_edge.edge.imaging import display_path, iter_image_files

COCO_FILE = "annotations.json"
TARGETS = ("outline", "box")  # what a training target marks: the drawn outline, or the whole box


class AnnotationError(EdgeError):
    """An annotation file is missing, malformed, or names a lesion outside its frame."""


@dataclass(frozen=True)
class Lesion:
    """One marked stenosis, in the frame's pixels: its box ``(x0, y0, x1, y1)`` and, when the
    annotation drew one, its outline as ``[(x, y), ...]``."""

    box: tuple[float, float, float, float]
    outline: Optional[tuple[tuple[float, float], ...]] = None

    @property
    def centre(self) -> tuple[float, float]:
        return (self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2


@dataclass(frozen=True)
class Frame:
    """A whole frame on disk and its lesions (empty for a frame without a stenosis)."""

    path: Path
    width: int
    height: int
    lesions: tuple[Lesion, ...] = field(default_factory=tuple)
    group: str = ""  # the run (cine sequence) it belongs to, for bootstrap over runs

    def mask(self, width: int, height: int, target: str = "outline") -> np.ndarray:
        """The lesions drawn as a uint8 0/1 mask of ``height`` x ``width`` (the frame scaled to
        it): outlines where the annotation has them (``target="outline"``), boxes otherwise."""
        return draw_lesions(self.lesions, (self.width, self.height), (width, height), target)


def draw_lesions(lesions: Sequence[Lesion], frame_size: tuple[int, int], size: tuple[int, int],
                 target: str = "outline") -> np.ndarray:
    """Each lesion filled in a ``size`` (width, height) canvas: one owner of how a lesion
    becomes pixels (training targets, truth masks for F1)."""
    if target not in TARGETS:
        raise AnnotationError(f"target must be one of {', '.join(TARGETS)}, found {target!r}")
    sx, sy = size[0] / frame_size[0], size[1] / frame_size[1]
    canvas = Image.new("L", size, 0)
    draw = ImageDraw.Draw(canvas)
    for lesion in lesions:
        if target == "outline" and lesion.outline and len(lesion.outline) >= 3:
            draw.polygon([(x * sx, y * sy) for x, y in lesion.outline], fill=1)
        else:
            x0, y0, x1, y1 = lesion.box
            draw.rectangle([x0 * sx, y0 * sy, x1 * sx, y1 * sy], fill=1)
    return np.asarray(canvas, dtype=np.uint8)


def load_frames(folder: Path) -> list[Frame]:
    """Every frame of a COCO or VOC folder (see the module's docstring), sorted by path."""
    folder = Path(folder)
    if not folder.is_dir():
        raise AnnotationError(f"{display_path(folder)}: no such folder of frames")
    coco = folder / COCO_FILE
    frames = load_coco(coco) if coco.is_file() else load_voc(folder)
    if not frames:
        raise AnnotationError(f"{display_path(folder)}: no frames (neither {COCO_FILE} nor images with .xml boxes)")
    return sorted(frames, key=lambda f: f.path)


def _number(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise AnnotationError(f"{where}: {value!r} is not a finite number")
    return float(value)


def checked_box(box: Sequence[float], width: int, height: int, where: str) -> tuple[float, float, float, float]:
    """A box clipped to its frame; one wholly outside the frame, or empty, is refused."""
    x0, y0, x1, y1 = (_number(v, where) for v in box)
    cx0, cy0, cx1, cy1 = max(0.0, x0), max(0.0, y0), min(float(width), x1), min(float(height), y1)
    if cx1 <= cx0 or cy1 <= cy0:
        raise AnnotationError(f"{where}: box [{x0:g}, {y0:g}, {x1:g}, {y1:g}] lies outside the "
                              f"{width}x{height} frame or is empty")
    return cx0, cy0, cx1, cy1


def load_coco(path: Path) -> list[Frame]:
    """Frames and lesions of a COCO file (boxes ``[x, y, w, h]``, polygons ``[[x, y, ...]]``)."""
    shown = display_path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
        images, annotations = data["images"], data.get("annotations", [])
        if not isinstance(images, list) or not isinstance(annotations, list):
            raise TypeError("images and annotations must be lists")
        by_id = {image["id"]: image for image in images}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise AnnotationError(f"{shown}: not a COCO annotation file ({type(exc).__name__}: {exc})".splitlines()[0]) from None
    root = path.parent / "images" if (path.parent / "images").is_dir() else path.parent
    lesions: dict[object, list[Lesion]] = {key: [] for key in by_id}
    for number, annotation in enumerate(annotations):
        where = f"{shown}: annotation {number}"
        if not isinstance(annotation, dict) or annotation.get("image_id") not in by_id:
            raise AnnotationError(f"{where}: names no image of the file")
        image = by_id[annotation["image_id"]]
        width, height = int(image["width"]), int(image["height"])
        x, y, w, h = annotation.get("bbox") or (None,) * 4
        box = checked_box((x, y, _number(x, where) + _number(w, where), _number(y, where) + _number(h, where)),
                          width, height, where)
        outline = None
        polygons = annotation.get("segmentation")
        if isinstance(polygons, list) and polygons and isinstance(polygons[0], list) and len(polygons[0]) >= 6:
            points = [_number(v, where) for v in polygons[0]]
            outline = tuple(zip(points[0::2], points[1::2]))
        lesions[annotation["image_id"]].append(Lesion(box, outline))
    frames = []
    for key, image in by_id.items():
        try:
            frames.append(Frame(root / image["file_name"], int(image["width"]), int(image["height"]),
                                tuple(lesions[key]), group=str(image["file_name"])))
        except (KeyError, TypeError, ValueError) as exc:
            raise AnnotationError(f"{shown}: image {key!r} lacks file_name, width or height ({exc})") from None
    return frames


def load_voc(folder: Path) -> list[Frame]:
    """Frames of a folder (recursive) with Pascal VOC boxes beside them; the run of a frame is
    its sub-folder (ADSD keeps one cine sequence per folder)."""
    frames = []
    for image_path in iter_image_files(folder):
        xml = image_path.with_suffix(".xml")
        group = str(image_path.parent.relative_to(folder))
        if not xml.is_file():
            with Image.open(image_path) as image:
                frames.append(Frame(image_path, image.width, image.height, (), group))
            continue
        frames.append(read_voc(xml, image_path, group))
    return frames


def read_voc(xml: Path, image_path: Path, group: str = "") -> Frame:
    """One VOC file: its frame size and every object's ``bndbox``."""
    shown = display_path(xml)
    try:
        root = ElementTree.parse(xml).getroot()
        width, height = int(root.findtext("size/width")), int(root.findtext("size/height"))
        boxes = [[float(obj.findtext(f"bndbox/{key}")) for key in ("xmin", "ymin", "xmax", "ymax")]
                 for obj in root.iter("object")]
    except (ElementTree.ParseError, OSError, TypeError, ValueError) as exc:
        raise AnnotationError(f"{shown}: not a Pascal VOC annotation ({type(exc).__name__}: {exc})".splitlines()[0]) from None
    if width <= 0 or height <= 0:
        raise AnnotationError(f"{shown}: frame size {width}x{height} is not positive")
    lesions = tuple(Lesion(checked_box(box, width, height, f"{shown}: object {n}")) for n, box in enumerate(boxes))
    return Frame(image_path, width, height, lesions, group)
