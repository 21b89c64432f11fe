import math

import numpy as np
import orjson
import pytest
import tdigest

from app.core.lenses.digest import (
    digest_from_wire,
    digest_to_wire,
    merge_wire,
    new_digest,
    quantile_key,
    quantiles,
)


def digest_of(values, compression=200):
    d = new_digest(compression)
    d.batch_update([float(v) for v in values])
    return d


@pytest.mark.parametrize(
    ("q", "key"),
    [(0.5, "p50"), (0.95, "p95"), (0.99, "p99"), (0.999, "p99.9"), (0.75, "p75"),
     (0.001, "p0.1"), (0.0, "p0"), (1.0, "p100")],
)
def test_quantile_key(q, key):
    assert quantile_key(q) == key


@pytest.mark.parametrize("q", [-0.1, 1.01, 50])
def test_quantile_key_rejects_out_of_range(q):
    with pytest.raises(ValueError, match="quantile"):
        quantile_key(q)


def test_new_digest_rejects_zero_compression():
    with pytest.raises(ValueError, match="compression"):
        new_digest(0)


def test_empty_digest_quantiles_are_none():
    assert quantiles(new_digest(), (0.5, 0.99)) == {"p50": None, "p99": None}


def test_empty_digest_wire_is_json_and_round_trips():
    wire = digest_to_wire(new_digest(100))
    assert wire["min"] is None and wire["max"] is None  # NaN would not survive JSON
    assert orjson.loads(orjson.dumps(wire)) == wire
    back = digest_from_wire(orjson.loads(orjson.dumps(wire)))
    assert back.is_empty()
    assert digest_to_wire(back) == wire


def test_wire_round_trip_is_byte_identical():
    rng = np.random.default_rng(7)
    d = digest_of(rng.lognormal(3.0, 1.0, 20_000))
    data = orjson.dumps(digest_to_wire(d))
    assert orjson.dumps(digest_to_wire(digest_from_wire(orjson.loads(data)))) == data


def test_small_digest_quantiles_are_exact():
    # Below the compression every value is its own centroid: linear interpolation like numpy.
    values = [3.0, 1.0, 4.0, 1.5, 9.0, 2.6]
    got = quantiles(digest_of(values), (0.5, 0.95))
    want = np.quantile(values, [0.5, 0.95])
    assert got["p50"] == pytest.approx(want[0])
    assert got["p95"] == pytest.approx(want[1])


def test_loads_the_tdigest_package_format():
    t = tdigest.TDigest()
    t.batch_update([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    d = digest_from_wire(t.to_dict())  # {'n', 'delta', 'K', 'centroids'}: no min/max
    assert d.n_values == 10
    assert d.quantile(0.5) == pytest.approx(t.percentile(50))


def test_wire_loads_in_the_tdigest_package():
    rng = np.random.default_rng(8)
    d = digest_of(rng.lognormal(3.0, 0.7, 5_000))
    t = tdigest.TDigest()
    t.update_from_dict(orjson.loads(orjson.dumps(digest_to_wire(d))))
    assert t.n == pytest.approx(5_000)
    for q in (0.5, 0.95, 0.99):
        assert t.percentile(q * 100) == pytest.approx(d.quantile(q), rel=0.01)


@pytest.mark.parametrize(
    "bad", [{}, {"centroids": "x"}, {"centroids": [{"m": 1.0}]}, ["centroids"], None]
)
def test_malformed_wire_raises_value_error(bad):
    with pytest.raises(ValueError, match="digest"):
        digest_from_wire(bad)


def test_merge_wire_of_nothing_is_empty():
    merged = merge_wire([], compression=50)
    assert merged.is_empty()
    assert merged.max_centroids == 50


def test_merge_wire_unions_values():
    a = digest_to_wire(digest_of(range(1, 11)))
    b = digest_to_wire(digest_of(range(11, 21)))
    empty = digest_to_wire(new_digest())
    merged = merge_wire([a, empty, b])
    assert merged.n_values == 20
    assert (merged.min(), merged.max()) == (1.0, 20.0)
    got = quantiles(merged, (0.5, 0.95))
    assert got == pytest.approx({"p50": 10.5, "p95": 19.05})  # numpy.quantile(1..20)


def test_merge_wire_keeps_the_requested_compression():
    rng = np.random.default_rng(9)
    parts = [digest_to_wire(digest_of(rng.lognormal(3.0, 1.0, 10_000))) for _ in range(4)]
    merged = merge_wire(parts, compression=100)
    assert merged.max_centroids == 100
    assert merged.n_values == 40_000
    assert math.isclose(merged.mass(), 40_000)
