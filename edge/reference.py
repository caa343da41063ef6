"""The released reference model, shipped inside the edge package.

A device that runs ``pip install "artery-edge[edge]"`` gets the project's INT8 model as
package data, so ``artery-edge infer --image x.png`` classifies without a training run
on a workstation. The same file is the INT8 file of ``models/reference/`` in the
repository (a link to this one: one copy, one owner); ``models/reference/MODEL_CARD.md``
says what it is, how it was trained and measured, and its SHA-256.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from edge.errors import ModelError
from edge.precisions import DEVICE_DEFAULT

REFERENCE_FILE = DEVICE_DEFAULT.file_name  # the INT8 file of models/reference


def packaged_reference() -> Path:
    """Path of the packaged INT8 reference model; a one-line error if this install lacks it."""
    path = Path(str(resources.files("edge") / "reference" / REFERENCE_FILE))
    if not path.is_file():
        raise ModelError(f"this installation has no packaged reference model ({path} is missing): pass --model")
    return path
