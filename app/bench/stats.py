"""Pure arithmetic of the bench: summaries of runs, percentiles, ratios within a run."""
from __future__ import annotations

import math
from typing import Iterable, Sequence


def median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    if not ordered:
        raise ValueError("median of no values")
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def summarize(values: Iterable[float | None]) -> dict | None:
    """{median, min, max, n} of the values that are not None; None when there are none."""
    known = [v for v in values if v is not None]
    if not known:
        return None
    return {"median": median(known), "min": min(known), "max": max(known), "n": len(known)}


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default); None for no values."""
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile must be within [0, 1], got {q}")
    ordered = sorted(values)
    if not ordered:
        return None
    pos = (len(ordered) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def paired_ratios(numerators: Sequence[float | None], denominators: Sequence[float | None]) -> list[float]:
    """Ratio of run i of one row to run i of another (runs of one round share the machine's load)."""
    # A row that never ran (quixstreams not installed) has no runs: no ratio, not an error.
    return [a / b for a, b in zip(numerators, denominators, strict=False) if a is not None and b]


def ratio_summary(numerators: Sequence[float | None], denominators: Sequence[float | None]) -> dict | None:
    """Median, min and max of the per-round ratios."""
    return summarize(paired_ratios(numerators, denominators))


def relative_error(estimate: float, exact: float) -> float:
    return abs(estimate - exact) / abs(exact) if exact else float("inf")
