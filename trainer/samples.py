"""A dataset's samples and the subsets they fall in: the vocabulary scanning, splitting and the
tf.data pipeline share (TensorFlow-free)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from artery_edge.edge.errors import ArteryEdgeError

SUBSETS = ("train", "validation", "test")


class DataError(ArteryEdgeError, ValueError):
    """The dataset cannot be used; the message is one line for the user."""


@dataclass(frozen=True)
class Sample:
    path: Path
    label: int
    subset: str = ""
    group: str = ""  # e.g. a patient or recording (--group-pattern); no group spans two subsets


def subset(samples: Iterable[Sample], name: str) -> list[Sample]:
    return [s for s in samples if s.subset == name]

