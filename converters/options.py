"""What ``convert`` writes and how, in one dataclass (as ``TrainConfig`` is for training): the
defaults and every check live here, so the CLI only maps its flags onto it.

Options that act on some precisions only (the calibration images, weight rounding, float16's
kept weights) default to None, "not given": the precision's own default applies (see
:mod:`converters.presets`, where each precision owns its options). Given for precisions that
take none of them, they are refused rather than silently ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Optional, Sequence, Union

from artery_edge.converters.presets import PRESETS, WEIGHT_ROUNDINGS
from artery_edge.edge.atomic import check_can_create
from artery_edge.edge.errors import ArteryEdgeError
from artery_edge.edge.model_record import check_labels
from artery_edge.edge.precisions import DEVICE_DEFAULT, PRECISIONS, parse_precisions


class ConversionError(ArteryEdgeError, ValueError):
    """The model, its calibration images or the options cannot be converted; one line for the user."""


def _flag(name: str) -> dict:
    return {"flag": name}  # the CLI flag a one-line error names


@dataclass(frozen=True)
class ConvertOptions:
    """What ``convert`` writes and how; checked when built, so a bad value converts nothing.

    Args:
        precisions: registry names (``edge.precisions``): a sequence, or ``"int8"``,
            ``"float16,int8"``, ``"all"``; converted in registry order.
        out_dir: output folder; None: next to the Keras model.
        labels: class names, for a model outside a run directory.
        force: replace existing .tflite files.
        apply_temperature: bake the run's calibration temperature into the graph
            (softmax(logits / T)); False: T = 1.
        calibration_images: int8: how many images calibrate the activation ranges.
        calibration_data: int8: class folders to take them from instead of the run's training split.
        weight_rounding: int8: ``calibrated`` (each kernel's int8 values chosen on the calibration
            images) or ``nearest`` (the converter's plain rounding).
        float16_keep_below: float16: ops whose weights have fewer elements stay float32 (0: none).
    """

    precisions: Union[str, Sequence[str]] = (DEVICE_DEFAULT.name,)
    out_dir: Optional[Path] = None
    labels: Optional[Sequence[str]] = None
    force: bool = False
    apply_temperature: bool = True
    calibration_images: Optional[int] = field(default=None, metadata=_flag("--calibration-images"))
    calibration_data: Optional[Path] = field(default=None, metadata=_flag("--calibration-data"))
    weight_rounding: Optional[str] = field(default=None, metadata=_flag("--weight-rounding"))
    float16_keep_below: Optional[int] = field(default=None, metadata=_flag("--float16-keep-below"))

    def __post_init__(self) -> None:
        """Every check, once, before TensorFlow or a model is loaded."""
        spec = self.precisions if isinstance(self.precisions, str) else ",".join(self.precisions)
        try:
            object.__setattr__(self, "precisions", tuple(p.name for p in parse_precisions(spec)))
        except ArteryEdgeError as exc:
            raise ConversionError(f"--quantize: {exc}") from None
        if self.labels is not None:
            object.__setattr__(self, "labels", tuple(self.labels))
            check_labels_option(self.labels)
        for name in self.given():  # each precision owns its options (converters.presets)
            if not any(name in PRESETS[p]().arguments for p in self.precisions):
                takers = [p for p, preset in PRESETS.items() if name in preset().arguments]
                raise ConversionError(f"{FLAGS[name]} applies only to {', '.join(takers)}, "
                                      f"not to {', '.join(self.precisions)}")
        if self.weight_rounding is not None and self.weight_rounding not in WEIGHT_ROUNDINGS:
            raise ConversionError(f"unknown weight rounding {self.weight_rounding!r}; "
                                  f"choose from {', '.join(WEIGHT_ROUNDINGS)}")
        if self.calibration_images is not None and self.calibration_images < 1:
            raise ConversionError("--calibration-images must be at least 1")
        if self.float16_keep_below is not None and self.float16_keep_below < 0:
            raise ConversionError("--float16-keep-below must be 0 or more")
        if self.out_dir is not None:  # an --out under a regular file: the OSError now, before the model loads
            check_can_create(PRECISIONS[self.precisions[0]].file(self.out_dir))

    def given(self) -> list[str]:
        """The precision-specific options set (not None), by field name."""
        return [name for name in FLAGS if getattr(self, name) is not None]

    def arguments(self, precision: str) -> dict[str, Any]:
        """The options ``precision`` takes: its defaults, overridden by what was given."""
        defaults = PRESETS[precision]().arguments
        return {name: default if getattr(self, name) is None else getattr(self, name)
                for name, default in defaults.items()}


def check_labels_option(labels: Sequence[str]) -> None:
    """``--labels``: two or more distinct, non-empty, printable class names (a duplicate would give a
    file the runtime refuses, and a decision that cannot name its class)."""
    check_labels(list(labels), 2, "--labels", ConversionError)


FLAGS = {f.name: f.metadata["flag"] for f in fields(ConvertOptions) if "flag" in f.metadata}


def option_default(name: str) -> Any:
    """A precision-specific option's default, as the precision that takes it defines it (help texts)."""
    return next(preset().arguments[name] for preset in PRESETS.values() if name in preset().arguments)
