"""How report.md, MODEL_CARD.md and the CLI write an evaluation's numbers (one place, so the
three agree)."""

from __future__ import annotations

from typing import Optional, Sequence

from artery_edge.edge.text import markdown


def cell(value: Optional[float], interval: Optional[Sequence[float]]) -> str:
    """``0.912 [0.871, 0.944]``; the value alone without an interval; ``n/a`` when undefined."""
    if value is None:
        return "n/a"
    return f"{value:.3f} [{interval[0]:.3f}, {interval[1]:.3f}]" if interval else f"{value:.3f}"


def threshold_text(threshold: Optional[float]) -> str:
    """A decision threshold; None is the arg-max rule (``edge.decision.decide``)."""
    return "argmax" if threshold is None else f"{threshold:.4f}"


def number(value: Optional[float], digits: int = 3) -> str:
    """A figure that may be undefined (an NPV with no negative decision, say): ``n/a`` then."""
    return "n/a" if value is None else f"{value:.{digits}f}"


def decision_text(report: dict) -> str:
    """How the thresholds in the tables were set (the run's stored operating point, or an option)."""
    positive = markdown(report["positive_class"])
    if report.get("threshold_source") == "--threshold":
        return (f"every model at threshold {report['options']['threshold']:g} on p({positive}), given as "
                "`--threshold`; the operating points stored with the models were not used.")
    if report.get("threshold_source") == "--target-sensitivity":
        return (f"each model at the threshold reaching sensitivity {report['target_sensitivity']:g} on the validation "
                "split (`--target-sensitivity`); the operating points stored with the models were not used.")
    return (f"each model at its own stored operating point ({markdown(report['operating_point'])}; "
            f"\"argmax\" where none is stored).")
