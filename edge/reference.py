"""The released models, shipped inside the edge package: the patch classifier and the whole-frame model.

A device that runs ``pip install "artery-edge[edge]"`` gets the project's INT8 models as
package data, so ``artery-edge infer --image x.png`` classifies and ``artery-edge scan
frame.png`` marks stenoses without a training run on a workstation. Each is the INT8 file of
``models/reference/`` or ``models/frames/`` in the repository (a link to this one: one copy,
one owner); each folder's ``MODEL_CARD.md`` says what it is, how it was trained and measured,
and its SHA-256, which the code here carries too and checks on every read.
"""

from __future__ import annotations

import hashlib
import os
from importlib import resources
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from artery_edge.edge.errors import ModelError
from artery_edge.edge.precisions import DEVICE_DEFAULT

REFERENCE_FILE = DEVICE_DEFAULT.file_name  # the INT8 file of models/reference
FRAME_FILE = "frame_int8.tflite"  # the INT8 file of models/frames, the released whole-frame model (`scan`)
# The released files' SHA-256, carried by the code that ships them (each MODEL_CARD.md states the
# same; tests/test_reference_model.py keeps them equal). The checksum inside a .tflite can be
# rewritten together with the file; these only by changing the installed code.
REFERENCE_SHA256 = "9b916b87dae1fe28e82240b84647d23d2af2c32d6b7bfe939620adf7c035b24c"
FRAME_SHA256 = "b6ecbb5dd4fe7ae13f03138e4ee68b31717cb38d5fc3c8803200834b50f28650"
ALLOW_MODIFIED = "ARTERY_EDGE_ALLOW_MODIFIED_REFERENCE"  # =1: run a modified release anyway, saying so


@dataclass(frozen=True)
class Release:
    """A model that ships inside the package: its file, what it is called, its released SHA-256."""

    file: str
    name: str
    sha256: str


RELEASES = (Release(REFERENCE_FILE, "reference model", REFERENCE_SHA256),
            Release(FRAME_FILE, "whole-frame model", FRAME_SHA256))


def release_location(release: Release) -> Path:
    """Where this installation keeps a packaged release."""
    return Path(str(resources.files("artery_edge.edge") / "reference" / release.file))


def reference_location() -> Path:
    """Where this installation keeps the packaged INT8 reference model."""
    return release_location(RELEASES[0])


def frame_location() -> Path:
    """Where this installation keeps the packaged INT8 whole-frame model."""
    return release_location(RELEASES[1])


def packaged(location: Path, name: str) -> Path:
    if not location.is_file():
        raise ModelError(f"this installation has no packaged {name} ({location} is missing): pass --model")
    return location


def packaged_reference() -> Path:
    """Path of the packaged INT8 reference model; a one-line error if this install lacks it."""
    return packaged(reference_location(), RELEASES[0].name)


def packaged_frame_model() -> Path:
    """Path of the packaged INT8 whole-frame model; a one-line error if this install lacks it."""
    return packaged(frame_location(), RELEASES[1].name)


def release_warning(path: Path, data: bytes) -> Optional[str]:
    """None unless ``path`` is a packaged release (through a link too) and ``data`` is not the
    released file. Then a :class:`ModelError`, or, with ``ARTERY_EDGE_ALLOW_MODIFIED_REFERENCE=1``,
    the warning every output of the run must carry: a modified file must not pass as the released one."""
    where = Path(path).resolve()
    for release, location in zip(RELEASES, (reference_location(), frame_location())):
        if where != location.resolve():
            continue
        digest = hashlib.sha256(data).hexdigest()
        if digest == release.sha256:
            return None
        what = (f"{path} is not the released {release.name} (SHA-256 {digest[:16]}..., "
                f"released {release.sha256[:16]}...)")
        if os.environ.get(ALLOW_MODIFIED) != "1":
            raise ModelError(f"{what}: modified or damaged; reinstall artery-edge, pass --model, "
                             f"or set {ALLOW_MODIFIED}=1 to run it anyway")
        return f"warning: {what}; running it anyway ({ALLOW_MODIFIED}=1): its answers are not the released model's"
    return None
