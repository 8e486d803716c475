"""Small statistics helpers shared by the sections."""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["percentile", "ratio"]


def percentile(values: Sequence[float], pct: float) -> float | None:
    """Nearest-rank percentile of already *sorted* ``values`` (None when empty)."""
    if not values:
        return None
    rank = max(1, math.ceil(pct / 100 * len(values)))
    return float(values[rank - 1])


def ratio(a: float | None, b: float | None) -> float | None:
    """``a / b`` rounded, or None when either side is missing."""
    if a is None or b is None or b == 0:
        return None
    return round(a / b, 3)
