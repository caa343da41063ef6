"""What a model is: one typed record, written to ``run.json`` and into a ``.tflite``'s metadata.

Its classes, the label its threshold is about, the threshold and the rule that chose it, the
temperature, the task (a patch classifier or a whole-frame map) and how its output is decoded,
the input it takes (size and preprocessing: the model config carries it, as timm's does), the
run it was adapted from, the SHA-256 of the Keras model it came from and a summary of its
training. Training writes it once (``trainer.runs.write_run``), the converters copy it into every
variant (``edge.metadata.ModelMetadata`` adds what belongs to one file: precision, quantization,
its own checksum), and every reader gets it back through :meth:`ModelRecord.from_dict`, which
also reads the files written before the record existed (``class_names``, ``source_model_sha256``).
TensorFlow-free: the device reads it.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Optional, Sequence

from artery_edge.edge.decision import positive_index
from artery_edge.edge.imaging import COLOR_ORDER, INPUT_RANGE, RESIZE_METHOD

TASKS = ("classify", "map")  # a patch classifier; a whole-frame lesion map (edge.scanner)
LEGACY_NAMES = {"class_names": "labels", "image_size": "input_size", "source_model_sha256": "model_sha256"}  # files from before the record
SHA256 = re.compile("[0-9a-f]{64}")
NUMBERS = {1: "one", 2: "two"}


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_threshold(value: Any, name: str = "threshold", error: type[Exception] = ValueError) -> None:
    """The one range check of a decision threshold (a stored one, ``--threshold``): a number in [0, 1]."""
    if not is_number(value) or not 0 <= value <= 1:
        raise error(f"{name} must lie between 0 and 1, found {value!r}")


def duplicate_labels(labels: Sequence[str]) -> list[str]:
    return sorted({label for label in labels if list(labels).count(label) > 1})


def check_labels(labels: Any, least: int = 2, name: str = "labels", error: type[Exception] = ValueError) -> None:
    """The one rule for class names: ``least`` or more non-empty, printable strings, no duplicate
    (a classifier has two or more; a whole-frame map one, its lesion class)."""
    if not isinstance(labels, (list, tuple)) or not all(isinstance(x, str) for x in labels):
        raise error(f"{name} must be a list of class names, found {labels!r}")
    shown = ",".join(labels)
    if len(labels) < least or not all(label.strip() for label in labels):
        raise error(f"{name} needs {NUMBERS.get(least, least)} or more non-empty class names, found {shown!r}")
    if not all(label.isprintable() for label in labels):
        raise error(f"{name}: class names must be printable text (no newline or control character), found {shown!r}")
    if duplicate_labels(labels):
        raise error(f"{name}: duplicate label(s) {', '.join(duplicate_labels(labels))}")


@dataclass
class ModelRecord:
    """What a model is and how to use it; :meth:`check` is the one validation of these facts."""

    labels: list[str]
    input_size: int
    task: str = "classify"
    positive_label: Optional[str] = None
    threshold: Optional[float] = None  # positive iff p(positive_label) >= it (a map: per pixel); None: arg-max
    operating_point: Optional[str] = None  # the named rule that chose the threshold on validation
    temperature: float = 1.0  # the graph outputs softmax(logits / temperature)
    decoding: dict[str, Any] = field(default_factory=dict)  # map: min_area (map pixels) of a lesion
    color_order: str = COLOR_ORDER
    input_range: tuple[float, float] = INPUT_RANGE
    resize_method: str = RESIZE_METHOD
    parent: dict[str, Any] = field(default_factory=dict)  # adapted from: run, name, model_sha256, data ({}: none)
    model_sha256: str = ""  # of the Keras model it is (a run's model.keras) or was converted from
    training: dict[str, Any] = field(default_factory=dict)  # a summary: data, recipe, test figures

    def check(self) -> "ModelRecord":
        """Every fact's type and range, in one place; a ValueError names the field."""
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {', '.join(TASKS)}, found {self.task!r}")
        check_labels(self.labels, 2 if self.task == "classify" else 1)
        if not isinstance(self.input_size, int) or isinstance(self.input_size, bool) or self.input_size < 1:
            raise ValueError(f"input_size must be a positive integer, found {self.input_size!r}")
        if self.positive_label is not None and self.positive_label not in self.labels:
            raise ValueError(f"positive_label {self.positive_label!r} is not one of the labels")
        if self.threshold is not None:
            check_threshold(self.threshold)
            if self.positive_label is None:
                raise ValueError("a threshold needs a positive_label")
        if not is_number(self.temperature) or not 0 < self.temperature < float("inf"):
            raise ValueError(f"temperature must be a positive number, found {self.temperature!r}")
        for name in ("color_order", "resize_method", "model_sha256") + (("operating_point",) if self.operating_point else ()):
            if not isinstance(getattr(self, name), str):
                raise ValueError(f"{name} must be a string, found {getattr(self, name)!r}")
        if self.model_sha256 and not SHA256.fullmatch(self.model_sha256):
            raise ValueError(f"model_sha256 must be 64 hex digits, found {self.model_sha256!r}")
        if len(self.input_range) != 2 or not all(is_number(v) for v in self.input_range):
            raise ValueError(f"input_range must be two numbers, found {list(self.input_range)!r}")
        for name in ("decoding", "parent", "training"):
            if not isinstance(getattr(self, name), dict):
                raise ValueError(f"{name} must be an object")
        if self.parent and not isinstance(self.parent.get("model_sha256"), str):
            raise ValueError(f"parent must record its model_sha256, found {self.parent!r}")
        return self

    def to_dict(self) -> dict[str, Any]:
        """The JSON form, the same in ``run.json`` and in the ``.tflite`` metadata."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> "ModelRecord":
        """The one reader: the record's own fields of ``data`` (other keys belong to the file that
        carries it), old spellings and ``null`` for an empty object accepted, then :meth:`check`."""
        return cls(**record_values(cls, data)).check()

    def replace(self, **changes: Any) -> "ModelRecord":
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return type(self)(**{**values, **changes})


def record_values(cls: type, data: Any) -> dict[str, Any]:
    """The keyword arguments of ``cls`` found in the JSON object ``data``."""
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    data = {LEGACY_NAMES.get(key, key): value for key, value in data.items()}
    known = {f.name: f for f in fields(cls)}
    values = {key: value for key, value in data.items() if key in known}
    for name in ("labels", "input_size"):
        if name not in values:
            raise ValueError(f"{name} is missing")
    for name in ("decoding", "parent", "training"):
        if name in values and values[name] is None:
            values[name] = {}
    if "temperature" in values and values["temperature"] is None:
        values["temperature"] = 1.0
    if "model_sha256" in values and values["model_sha256"] is None:
        values["model_sha256"] = ""
    labels = values["labels"]
    if values.get("positive_label") is None and isinstance(labels, list) and labels and all(isinstance(x, str) for x in labels):
        values["positive_label"] = labels[positive_index(labels)]  # files before the record: the rule it names
    if isinstance(values.get("input_range"), list):
        values["input_range"] = tuple(values["input_range"])
    return values
