"""Merged percentiles against exact numpy on 100k lognormal latencies over 4 partitions."""
import numpy as np
import orjson
import pytest

from app.core.ingest.events import RequestEvent
from app.core.lenses.sre import SreAccumulator, merge_sre_partials

N = 100_000
PARTITIONS = 4
WINDOW_S = 60
SLICE_S = 10
W0 = 1_700_000_040
QS = (0.5, 0.95, 0.99)


def fold_partition(rng, events):
    """Fold in batches of varying size; now and then restore from state bytes, as a
    restarted worker would, so the test covers the durable round trip too."""
    acc = SreAccumulator(W0, availability_slice_s=SLICE_S, compression=200)
    i = 0
    while i < len(events):
        size = int(rng.integers(1, 4_000))
        acc.fold(events[i : i + size])
        i += size
        if rng.random() < 0.2:
            acc = SreAccumulator.from_state(orjson.loads(orjson.dumps(acc.to_state())))
    return acc


@pytest.fixture(scope="module")
def truth_and_merged():
    rng = np.random.default_rng(20_240_601)
    latency_ms = rng.lognormal(mean=4.0, sigma=0.9, size=N)
    ts_s = W0 + rng.random(N) * WINDOW_S
    statuses = rng.choice(
        [200, 201, 404, 429, 500, 503], size=N, p=[0.8, 0.1, 0.05, 0.02, 0.01, 0.02]
    )
    # Error bursts in two slices so that some slices are down and availability means something.
    burst = np.isin((ts_s - W0) // SLICE_S, (1, 3)) & (rng.random(N) < 0.06)
    statuses[burst] = 503
    partition = rng.integers(0, PARTITIONS, size=N)

    partials = []
    for p in range(PARTITIONS):
        idx = np.flatnonzero(partition == p)
        events = [
            RequestEvent(float(ts_s[j]), "checkout", float(latency_ms[j]), int(statuses[j]))
            for j in idx
        ]
        acc = fold_partition(rng, events)
        data = orjson.dumps(acc.to_partial("checkout", p, WINDOW_S))  # as on the topic
        partials.append(orjson.loads(data))
    merged = merge_sre_partials(partials, quantiles=QS)
    return latency_ms, ts_s, statuses, merged


def test_percentiles_within_one_percent(truth_and_merged):
    latency_ms, _, _, merged = truth_and_merged
    exact = np.quantile(latency_ms, QS)
    for q, want in zip(("p50", "p95", "p99"), exact, strict=True):
        got = merged["latency_ms"][q]
        assert abs(got - want) / want < 0.01, (q, got, want)


def test_counts_and_error_ratio_exact(truth_and_merged):
    _, _, statuses, merged = truth_and_merged
    errors = int((statuses >= 500).sum())
    assert merged["requests"] == N
    assert merged["errors"] == errors
    assert merged["error_ratio"] == errors / N
    assert merged["partitions"] == list(range(PARTITIONS))
    assert merged["latency_ms_digest"]["n_values"] == N


def test_availability_exact(truth_and_merged):
    _, ts_s, statuses, merged = truth_and_merged
    slice_index = ((ts_s - W0) // SLICE_S).astype(int)
    requests = np.bincount(slice_index)
    errors = np.bincount(slice_index, weights=statuses >= 500)
    with_traffic = requests > 0
    up = (errors[with_traffic] / requests[with_traffic]) <= 0.05
    assert 0 < up.sum() < with_traffic.sum()  # the bursts took slices down: not vacuous
    assert merged["slices_with_traffic"] == int(with_traffic.sum())
    assert merged["slices_up"] == int(up.sum())
    assert merged["availability"] == up.sum() / with_traffic.sum()
