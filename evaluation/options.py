"""What ``evaluate`` measures and how, in one dataclass (as ``ConvertOptions`` is for ``convert``):
every check runs when it is built, before TensorFlow or a model loads, and it writes back the
command line that reproduces it (the model card's "Reproduce" line keeps every option given)."""

from __future__ import annotations

import math
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

from artery_edge.edge.errors import OptionError
from artery_edge.edge.model_record import check_threshold

DEFAULT_BOOTSTRAP = 1000
MAX_BOOTSTRAP = 100_000  # each resample recomputes every metric: more is hours, not precision


def _in_range(value: Optional[float], flag: str, low: float, high: float, low_open: bool, high_open: bool) -> None:
    if value is None:
        return
    above = value > low if low_open else value >= low
    below = value < high if high_open else value <= high
    if isinstance(value, bool) or math.isnan(value) or not (above and below):
        bounds = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise OptionError(f"{flag} must lie in {bounds}, not {value}")


@dataclass(frozen=True)
class EvaluateOptions:
    """What ``evaluate`` scores and how it decides; checked when built.

    Args:
        models: TFLite files (None: the run's converted files, every precision).
        data_dir: a class-folder dataset instead of the run's test split.
        threshold: decide every model at this threshold instead of its stored operating point.
        target_sensitivity: choose each model's threshold on the validation split to reach this
            sensitivity (excludes ``threshold``: both set the operating point).
        bootstrap_rounds: resamples for the 95% intervals (1 .. 100,000).
        prevalence: also report PPV and NPV at this share of positives (0 < P < 1).
    """

    models: Optional[Sequence[Path]] = None
    data_dir: Optional[Path] = None
    threshold: Optional[float] = None
    target_sensitivity: Optional[float] = None
    bootstrap_rounds: int = DEFAULT_BOOTSTRAP
    prevalence: Optional[float] = None

    def __post_init__(self) -> None:
        if self.threshold is not None and self.target_sensitivity is not None:
            raise OptionError("--threshold and --target-sensitivity both set the operating point: give one of them")
        if self.threshold is not None:
            check_threshold(self.threshold, "--threshold", OptionError)
        _in_range(self.target_sensitivity, "--target-sensitivity", 0, 1, True, False)
        _in_range(self.prevalence, "--prevalence", 0, 1, True, True)
        if isinstance(self.bootstrap_rounds, bool) or not 1 <= self.bootstrap_rounds <= MAX_BOOTSTRAP:
            raise OptionError(f"--bootstrap must lie between 1 and {MAX_BOOTSTRAP:,}, not {self.bootstrap_rounds}")
        if self.models is not None:
            models = tuple(Path(m) for m in self.models)
            seen: dict[Path, Path] = {}
            for model in models:
                key = model.resolve()
                if key in seen:
                    raise OptionError(f"--models names {model} twice (as {seen[key]} too)")
                seen[key] = model
            object.__setattr__(self, "models", models)

    def to_dict(self) -> dict:
        return {"models": None if self.models is None else [str(m) for m in self.models],
                "data_dir": None if self.data_dir is None else str(self.data_dir), "threshold": self.threshold,
                "target_sensitivity": self.target_sensitivity, "bootstrap_rounds": self.bootstrap_rounds,
                "prevalence": self.prevalence}

    def command(self, run_dir: Path) -> str:
        """The shell command that evaluates ``run_dir`` again with these options (quoted for a POSIX shell)."""
        words = ["artery-edge", "evaluate", "--run", str(run_dir)]
        for model in self.models or ():
            words += ["--models", str(model)]
        for flag, value in (("--data", self.data_dir), ("--threshold", self.threshold),
                            ("--target-sensitivity", self.target_sensitivity), ("--prevalence", self.prevalence)):
            if value is not None:
                words += [flag, repr(float(value)) if isinstance(value, float) else str(value)]  # 0.5, not np.float64(0.5)
        if self.bootstrap_rounds != DEFAULT_BOOTSTRAP:
            words += ["--bootstrap", str(self.bootstrap_rounds)]
        return shlex.join(words)
