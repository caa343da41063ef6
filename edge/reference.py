"""The released reference model, shipped inside the edge package.

A device that runs ``pip install "artery-edge[edge]"`` gets the project's INT8 model as
package data, so ``artery-edge infer --image x.png`` classifies without a training run
on a workstation. The same file is the INT8 file of ``models/reference/`` in the
repository (a link to this one: one copy, one owner); ``models/reference/MODEL_CARD.md``
says what it is, how it was trained and measured, and its SHA-256.
"""

from __future__ import annotations

import hashlib
import os
from importlib import resources
from pathlib import Path
from typing import Optional

from edge.errors import ModelError
from edge.precisions import DEVICE_DEFAULT

REFERENCE_FILE = DEVICE_DEFAULT.file_name  # the INT8 file of models/reference
# The released file's SHA-256, carried by the code that ships it (MODEL_CARD.md states the same;
# tests/test_reference_model.py keeps them equal). The checksum inside a .tflite can be rewritten
# together with the file; this one only by changing the installed code.
REFERENCE_SHA256 = "9b916b87dae1fe28e82240b84647d23d2af2c32d6b7bfe939620adf7c035b24c"
ALLOW_MODIFIED = "ARTERY_EDGE_ALLOW_MODIFIED_REFERENCE"  # =1: run a modified reference anyway, saying so


def reference_location() -> Path:
    """Where this installation keeps the packaged INT8 reference model."""
    return Path(str(resources.files("edge") / "reference" / REFERENCE_FILE))


def packaged_reference() -> Path:
    """Path of the packaged INT8 reference model; a one-line error if this install lacks it."""
    path = reference_location()
    if not path.is_file():
        raise ModelError(f"this installation has no packaged reference model ({path} is missing): pass --model")
    return path


def release_warning(path: Path, data: bytes) -> Optional[str]:
    """None unless ``path`` is the packaged reference model (through a link too) and ``data`` is
    not the released file. Then a :class:`ModelError`, or, with ``ARTERY_EDGE_ALLOW_MODIFIED_REFERENCE=1``,
    the warning every output of the run must carry: a modified file must not pass as the released one."""
    if Path(path).resolve() != reference_location().resolve():
        return None
    digest = hashlib.sha256(data).hexdigest()
    if digest == REFERENCE_SHA256:
        return None
    what = (f"{path} is not the released reference model (SHA-256 {digest[:16]}..., "
            f"released {REFERENCE_SHA256[:16]}...)")
    if os.environ.get(ALLOW_MODIFIED) != "1":
        raise ModelError(f"{what}: modified or damaged; reinstall artery-edge, pass --model, "
                         f"or set {ALLOW_MODIFIED}=1 to run it anyway")
    return f"warning: {what}; running it anyway ({ALLOW_MODIFIED}=1): its answers are not the released model's"


FRAME_FILE = "frame_int8.tflite"  # the INT8 file of models/frames, the released whole-frame model (`scan`)


def packaged_frame_model() -> Path:
    """Path of the packaged INT8 whole-frame model; a one-line error if this install lacks it."""
    path = Path(str(resources.files("edge") / "reference" / FRAME_FILE))
    if not path.is_file():
        raise ModelError(f"this installation has no packaged whole-frame model ({path} is missing): pass --model")
    return path
