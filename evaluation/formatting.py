"""How report.md, MODEL_CARD.md and the CLI write an evaluation's numbers (one place, so the
three agree)."""

from __future__ import annotations

from typing import Optional, Sequence


def cell(value: Optional[float], interval: Optional[Sequence[float]]) -> str:
    """``0.912 [0.871, 0.944]``; the value alone without an interval; ``n/a`` when undefined."""
    if value is None:
        return "n/a"
    return f"{value:.3f} [{interval[0]:.3f}, {interval[1]:.3f}]" if interval else f"{value:.3f}"


def threshold_text(threshold: Optional[float]) -> str:
    """A decision threshold; None is the arg-max rule (``edge.decision.decide``)."""
    return "argmax" if threshold is None else f"{threshold:.4f}"
