"""Latency SLIs from merged t-digests against the exact fraction of known samples."""
import math
from statistics import NormalDist

import numpy as np
import pytest

from app.core.lenses.digest import digest_to_wire, merge_wire, new_digest
from app.core.slo.sli import bad_events, count_at_or_below
from app.core.slo.spec import LATENCY, Slo

SLO_300 = Slo("checkout", "latency-300ms", 99.0, sli=LATENCY, threshold_ms=300.0)


def merged_window(latencies_ms, partitions=4):
    """A merged window as the joiner builds it: one digest per partition, merged."""
    wires = []
    for part in np.array_split(np.asarray(latencies_ms, dtype=float), partitions):
        d = new_digest()
        d.batch_update(part.tolist())
        wires.append(digest_to_wire(d))
    return {"lens": "sre", "subject": "checkout", "window_start": 0, "window_end": 60,
            "requests": len(latencies_ms), "errors": 0,
            "latency_ms_digest": digest_to_wire(merge_wire(wires))}


def lognormal(rng, n):
    return rng.lognormal(np.log(120), 0.8, n)  # median 120 ms, heavy tail


def threshold_for(slow_share):
    """The latency above which `slow_share` of lognormal(120 ms, 0.8) requests lie."""
    return 120.0 * math.exp(0.8 * NormalDist().inv_cdf(1.0 - slow_share))


# Relative error allowed on the count of slow requests, by how rare they are. The bounds
# are the worst of 20 seeds (docs/SLO.md) rounded up: a t-digest of 200 centroids resolves
# the far tail less finely, and linear interpolation over a falling density overestimates.
BANDS = [(0.05, 0.01), (0.02, 0.015), (0.01, 0.02), (0.005, 0.035), (0.002, 0.035)]


@pytest.mark.parametrize("per_window", [200, 1000, 5000, 50_000])
@pytest.mark.parametrize("slow_share, tolerance", BANDS)
def test_latency_sli_from_digests_against_the_exact_fraction(per_window, slow_share, tolerance):
    rng = np.random.default_rng(per_window)
    threshold = threshold_for(slow_share)
    slo = Slo("checkout", "latency", 99.0, sli=LATENCY, threshold_ms=threshold)
    exact = estimate = total = 0.0
    for _ in range(30 if per_window < 50_000 else 10):  # what a burn window sums
        x = lognormal(rng, per_window)
        exact += float((x > threshold).sum())
        estimate += bad_events(merged_window(x), slo)
        total += per_window
    # The SLI itself (share of requests within the threshold) is within 1 %, by far...
    assert (total - estimate) / total == pytest.approx((total - exact) / total, rel=0.001)
    # ...and so is the count of slow requests, as long as they are not too rare.
    assert estimate == pytest.approx(exact, rel=tolerance)


@pytest.mark.parametrize("per_window", [20, 100, 150])
def test_small_windows_are_counted_exactly(per_window):
    # Up to ~200 values a digest keeps every value as its own centroid: no estimate at all.
    rng = np.random.default_rng(per_window)
    for _ in range(20):
        x = lognormal(rng, per_window)
        for t in (100.0, 300.0, 900.0):
            slo = Slo("checkout", "l", 99.0, sli=LATENCY, threshold_ms=t)
            assert bad_events(merged_window(x), slo) == pytest.approx(float((x > t).sum()))


def test_at_the_threshold_is_good_like_a_prometheus_le_bucket():
    window = merged_window([100.0, 200.0, 300.0, 400.0], partitions=1)
    assert bad_events(window, SLO_300) == pytest.approx(1.0)


def test_cdf_edges():
    wire = merged_window([float(v) for v in range(1, 1001)], partitions=1)["latency_ms_digest"]
    assert count_at_or_below(wire, 0.5) == (1000.0, 0.0)
    assert count_at_or_below(wire, 1000.0) == (1000.0, 1000.0)
    _, mid = count_at_or_below(wire, 500.0)
    assert mid == pytest.approx(500.0, abs=2.0)


def test_errors_slo_counts_errors_and_a_window_without_a_digest_is_refused():
    window = {**merged_window([100.0] * 10), "errors": 3}
    assert bad_events(window, Slo("checkout", "availability", 99.9)) == 3
    assert bad_events({**window, "requests": 0, "latency_ms_digest": None}, SLO_300) == 0
    with pytest.raises(ValueError, match="no latency digest"):
        bad_events({**window, "latency_ms_digest": None}, SLO_300)
