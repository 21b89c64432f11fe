"""Small, exact statistics for the correlation core: robust centre and spread, Wilson
bounds, Pearson correlation.

Plain Python on short lists (a baseline is ~30 numbers): numpy would cost more in
conversion than it saves, and these functions must give bit-identical results on every
run, so they iterate in the order given and never sample.
"""
import math
from collections.abc import Sequence
from dataclasses import dataclass

# Scales a median absolute deviation to a standard deviation for normal data, so
# "3 robust sigmas" means what a reader expects.
MAD_TO_SIGMA = 1.4826


@dataclass(frozen=True)
class Baseline:
    """Robust summary of one rolling series: median, MAD and how many windows fed it."""

    median: float
    mad: float
    windows: int

    @property
    def sigma(self) -> float:
        """MAD scaled to a standard deviation (normal-equivalent)."""
        return MAD_TO_SIGMA * self.mad


def median(values: Sequence[float]) -> float:
    """The median of a non-empty sequence (mean of the middle two for even lengths)."""
    ordered = sorted(values)
    n = len(ordered)
    if n == 0:
        raise ValueError("median of no values")
    mid = n // 2
    if n % 2:
        return float(ordered[mid])
    return (ordered[mid - 1] + ordered[mid]) / 2.0


def mad(values: Sequence[float], centre: float) -> float:
    """Median absolute deviation of `values` around `centre`."""
    return median([abs(v - centre) for v in values])


def quantile(values: Sequence[float], q: float) -> float:
    """The q-quantile with linear interpolation (numpy's default method)."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("quantile of no values")
    pos = (len(ordered) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def wilson_interval(bad: int, n: int, z: float) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion bad/n.

    Chosen over the normal approximation because it stays inside [0, 1] and is honest at
    small n and at proportions near 0: exactly the "3 errors out of 40 requests at 3 a.m."
    case the minimum-volume guard is about.
    """
    if n <= 0:
        return 0.0, 1.0
    p = bad / n
    z2 = z * z
    denom = 1.0 + z2 / n
    centre = p + z2 / (2.0 * n)
    spread = z * math.sqrt(p * (1.0 - p) / n + z2 / (4.0 * n * n))
    return max(0.0, (centre - spread) / denom), min(1.0, (centre + spread) / denom)


def wilson_lower(bad: int, n: int, z: float) -> float:
    """Lower Wilson bound: with high confidence the true proportion is at least this."""
    return wilson_interval(bad, n, z)[0]


def pearson(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Pearson correlation of two equally long series; None when undefined (a flat series
    or fewer than 3 points), because a made-up 0 would read as "uncorrelated"."""
    n = len(xs)
    if n != len(ys):
        raise ValueError("series of different lengths")
    if n < 3:
        return None
    mx = math.fsum(xs) / n
    my = math.fsum(ys) / n
    sxy = math.fsum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    sxx = math.fsum((x - mx) ** 2 for x in xs)
    syy = math.fsum((y - my) ** 2 for y in ys)
    if sxx <= 0.0 or syy <= 0.0:
        return None
    r = sxy / math.sqrt(sxx * syy)
    return max(-1.0, min(1.0, r))


def bounded_size(relative: float) -> float:
    """Map a relative worsening r >= 0 (1.0 = doubled) onto [0, 1): r / (1 + r).

    Bounded so one metric going from 0 to anything (r = inf) cannot dwarf every other
    signal in a score; monotone so bigger changes still rank higher.
    """
    if relative <= 0.0:
        return 0.0
    if math.isinf(relative):
        return 1.0
    return relative / (1.0 + relative)
