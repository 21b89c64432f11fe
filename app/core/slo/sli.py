"""Bad events of one merged SRE window for one SLO.

- `errors`: the window's `errors` (5xx by default; LENSBRIDGE_ERROR_STATUSES decides).
- `latency`: requests slower than `threshold_ms`, i.e. requests x (1 - CDF(threshold)),
  the CDF read from the window's merged t-digest. "At or under the threshold is good",
  as a Prometheus `le` bucket counts.

We read the CDF from the digest's centroids ourselves rather than with
`fastdigest.TDigest.cdf`, using the interpolation of the reference t-digest
(Dunning's MergingDigest): single-value centroids are exact points, heavier ones
spread between neighbouring means. fastdigest spreads every centroid, single values
included, so a window of a few hundred requests, where most centroids hold one value,
loses a third to a half of its slow requests at a 0.2 % tail (measured: lognormal
latencies, 200 requests per window, 4 partitions merged), which would hide latency burns
exactly where traffic is low. Here: exact up to ~200 requests per window, within 1 %
above (tests/unit/core/slo/test_slo_sli.py).
"""
from collections.abc import Mapping
from typing import Any

from app.core.slo.spec import ERRORS, Slo


def bad_events(window: Mapping[str, Any], slo: Slo) -> float | int:
    """Bad events of `slo` in one merged window; ValueError for an inconsistent window."""
    requests = window["requests"]
    if slo.sli == ERRORS:
        return window["errors"]
    if requests == 0:
        return 0
    wire = window.get("latency_ms_digest")
    if not isinstance(wire, Mapping) or not wire.get("centroids"):
        raise ValueError(f"window {window.get('window_start')} of {window.get('subject')} has "
                         f"{requests} requests but no latency digest")
    if slo.threshold_ms is None:  # Slo.problems() and the loader refuse such an SLO
        raise ValueError(f"latency SLO {slo.service}/{slo.name} has no threshold_ms")
    total, at_or_below = count_at_or_below(wire, slo.threshold_ms)
    return requests * (1.0 - at_or_below / total)


def count_at_or_below(wire: Mapping[str, Any], x: float) -> tuple[float, float]:
    """(values in the digest, estimated values <= x), from a wire-format digest."""
    centroids = wire["centroids"]
    means = [float(c["m"]) for c in centroids]
    weights = [float(c["c"]) for c in centroids]
    total = sum(weights)
    low, high = wire.get("min"), wire.get("max")
    if low is None:
        low = means[0]
    if high is None:
        high = means[-1]
    if x < low:
        return total, 0.0
    if x >= high:
        return total, total
    if x < means[0]:  # left tail: min is a value of its own, the rest of half of c0 spreads
        return total, 1 + (x - low) / (means[0] - low) * (weights[0] / 2 - 1)
    if x >= means[-1]:  # right tail, the mirror image (max is its own value)
        return total, total - 1 - (high - x) / (high - means[-1]) * (weights[-1] / 2 - 1)
    below = 0.0
    for i in range(len(means) - 1):
        if means[i] <= x < means[i + 1]:
            return total, below + _between(weights[i], weights[i + 1],
                                           (x - means[i]) / (means[i + 1] - means[i]))
        below += weights[i]
    return total, total  # unreachable: x lies within [means[0], means[-1])


def _between(left: float, right: float, position: float) -> float:
    """Values <= x of two neighbouring centroids, x at `position` (0..1) between their means.
    Half of each spreads towards the other; a single value is a point, all on its mean."""
    if left == 1 and right == 1:
        return 1.0  # x is between two actual values: exactly the left one is <= x
    left_point = 0.5 if left == 1 else 0.0
    right_point = 0.5 if right == 1 else 0.0
    spread = (left + right) / 2 - left_point - right_point
    return left / 2 + left_point + spread * position
