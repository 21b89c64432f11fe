import base64
import itertools
import json

import jsonschema
import numpy as np
import orjson
import pytest
import tdigest

from app.core.ingest.events import RequestEvent
from app.core.lenses.digest import digest_from_any, digest_from_wire, new_digest
from app.core.lenses.sre import (
    SreAccumulator,
    merge_sre_partials,
    parse_error_statuses,
)
from tests.paths import ROOT

SCHEMAS = ROOT / "schemas"
W0 = 1_700_000_040  # a window start aligned to 60 s


def ev(ts_s, status=200, latency_ms=10.0, service="checkout"):
    return RequestEvent(ts_s, service, latency_ms, status)


def state_bytes(acc):
    return orjson.dumps(acc.to_state())


# --- error statuses -------------------------------------------------------------------


def test_parse_error_statuses_ranges_and_singles():
    statuses = parse_error_statuses("500-599,429")
    assert {429, 500, 503, 599} <= statuses
    assert 404 not in statuses and 600 not in statuses and 499 not in statuses
    assert len(statuses) == 101
    assert parse_error_statuses(" 502 , 503-504 ") == frozenset({502, 503, 504})


@pytest.mark.parametrize(
    "spec", ["", "  ", "abc", "599-500", "5xx", "500-", "50", "500,,503", "1000", "-500"]
)
def test_parse_error_statuses_rejects_bad_specs(spec):
    with pytest.raises(ValueError, match="error status spec"):
        parse_error_statuses(spec)


def test_default_rule_counts_5xx_only():
    acc = SreAccumulator(W0)
    acc.fold([ev(W0 + 1, s) for s in (200, 404, 503, 500, 499, 599, 302)])
    assert (acc.requests, acc.errors) == (7, 3)


def test_configured_status_set():
    acc = SreAccumulator(W0)
    acc.fold([ev(W0 + 1, s) for s in (429, 404, 503, 200)], parse_error_statuses("500-599,429"))
    assert (acc.requests, acc.errors) == (4, 2)


def test_predicate_rule_and_bad_rule():
    acc = SreAccumulator(W0)
    acc.fold([ev(W0 + 1, s) for s in (404, 503)], lambda status: status == 404)
    assert acc.errors == 1
    with pytest.raises(TypeError, match="is_error"):
        acc.fold([ev(W0 + 1)], 5)


# --- folding and slices ---------------------------------------------------------------


def test_slices_are_floor_of_offset_over_slice_length():
    acc = SreAccumulator(1000, availability_slice_s=10)
    acc.fold([ev(1000.0), ev(1009.999, 503), ev(1010.0), ev(1010.5), ev(1059.9, 500)])
    assert acc.slices == {1000: [2, 1], 1010: [2, 0], 1050: [1, 1]}
    partial = acc.to_partial("checkout", 3, 60)
    assert partial["slices"] == [
        {"start": 1000, "requests": 2, "errors": 1},
        {"start": 1010, "requests": 2, "errors": 0},
        {"start": 1050, "requests": 1, "errors": 1},
    ]
    assert (partial["window_start"], partial["window_end"], partial["partition"]) == (1000, 1060, 3)


def test_batches_add_up_like_one_batch():
    events = [ev(W0 + i * 0.7, 500 if i % 7 == 0 else 200, 5.0 + i) for i in range(80)]
    whole, split = SreAccumulator(W0), SreAccumulator(W0)
    whole.fold(events)
    for chunk in (events[:1], events[1:30], events[30:]):
        split.fold(chunk)
    assert (split.requests, split.errors) == (whole.requests, whole.errors)
    assert split.slices == whole.slices
    assert split.digest_wire()["n_values"] == 80


def test_empty_batch_is_a_no_op():
    acc = SreAccumulator(W0)
    before = state_bytes(acc)
    acc.fold([])
    assert state_bytes(acc) == before


@pytest.mark.parametrize(
    ("bad_event", "message"),
    [(ev(W0 - 0.5), "before window start"), (ev(W0 + 2, latency_ms=float("nan")), "finite")],
)
def test_bad_batch_leaves_accumulator_unchanged(bad_event, message):
    acc = SreAccumulator(W0)
    acc.fold([ev(W0 + 1, 503, 12.0)])
    before = state_bytes(acc)
    with pytest.raises(ValueError, match=message):
        acc.fold([ev(W0 + 3, 503, 8.0), bad_event])
    assert state_bytes(acc) == before


def test_partial_rejects_events_past_window_end():
    acc = SreAccumulator(W0)
    acc.fold([ev(W0 + 59.999)])
    acc.to_partial("checkout", 0, 60)  # still inside
    acc.fold([ev(W0 + 60.0)])
    with pytest.raises(ValueError, match="after window end"):
        acc.to_partial("checkout", 0, 60)


# --- durable state --------------------------------------------------------------------


def test_state_round_trip_is_byte_identical():
    rng = np.random.default_rng(11)
    acc = SreAccumulator(W0, compression=100)
    lat = rng.lognormal(3.0, 1.0, 5_000)
    acc.fold([ev(W0 + i * 0.01, 503 if i % 50 == 0 else 200, lat[i]) for i in range(5_000)])
    data = state_bytes(acc)
    restored = SreAccumulator.from_state(orjson.loads(data))
    assert restored.to_state() == orjson.loads(data)
    assert state_bytes(restored) == data
    partial = orjson.dumps(acc.to_partial("checkout", 1, 60))
    assert orjson.dumps(restored.to_partial("checkout", 1, 60)) == partial


def test_folding_after_restore_matches_folding_without_crash():
    # A worker that crashed after a table write and replays the rest must end where a
    # worker that never crashed ends, byte for byte (the partial may be re-sent).
    rng = np.random.default_rng(12)
    lat = rng.lognormal(3.0, 1.0, 3_000)
    events = [ev(W0 + i * 0.02, 200, lat[i]) for i in range(3_000)]
    steady = SreAccumulator(W0)
    steady.fold(events[:1_700])
    crashed = SreAccumulator.from_state(orjson.loads(state_bytes(steady)))
    steady.fold(events[1_700:])
    crashed.fold(events[1_700:])
    assert state_bytes(crashed) == state_bytes(steady)


def test_fresh_state_round_trips():
    data = state_bytes(SreAccumulator(W0, availability_slice_s=5, compression=50))
    restored = SreAccumulator.from_state(orjson.loads(data))
    assert state_bytes(restored) == data
    assert restored.availability_slice_s == 5
    assert restored.digest_wire()["max_centroids"] == 50


def test_state_written_before_binary_digests_still_restores():
    # Version 1 table values carry the digest as the wire dict; an upgraded worker reads them.
    acc = SreAccumulator(W0, compression=100)
    acc.fold([ev(W0 + i * 0.01, 200, 10.0 + i) for i in range(500)])
    v1 = acc.to_state() | {"state_version": 1, "latency_ms_digest": acc.digest_wire()}
    restored = SreAccumulator.from_state(orjson.loads(orjson.dumps(v1)))
    assert orjson.dumps(restored.to_partial("checkout", 0, 60)) == orjson.dumps(acc.to_partial("checkout", 0, 60))
    restored.fold([ev(W0 + 30, 200, 5.0)])
    acc.fold([ev(W0 + 30, 200, 5.0)])
    assert state_bytes(restored) == state_bytes(acc)  # folded: rewritten as version 2


def test_state_digest_is_binary_and_smaller_than_the_wire_dict():
    lat = np.random.default_rng(13).lognormal(4.0, 1.0, 20_000)
    acc = SreAccumulator(W0, compression=200)
    acc.fold([ev(W0 + i * 0.001, 200, lat[i]) for i in range(20_000)])
    state = acc.to_state()
    assert isinstance(state["latency_ms_digest"], str)
    assert len(state["latency_ms_digest"]) < len(orjson.dumps(acc.digest_wire())) / 1.5


@pytest.mark.parametrize("digest", ["not base64!", "AAAA", None, 7])
def test_corrupt_stored_digest_raises_value_error(digest):
    state = SreAccumulator(W0).to_state() | {"latency_ms_digest": digest}
    with pytest.raises(ValueError, match="digest"):
        SreAccumulator.from_state(state).fold([ev(W0 + 1, 200, 5.0)])


@pytest.mark.parametrize("mangle", [lambda s: s.pop("slices"), lambda s: s.update(state_version=9)])
def test_malformed_state_raises_value_error(mangle):
    state = SreAccumulator(W0).to_state()
    mangle(state)
    with pytest.raises(ValueError, match="state"):
        SreAccumulator.from_state(state)


# --- partial: schema and digest interop -----------------------------------------------


@pytest.fixture(scope="module")
def validator():
    schema = json.loads((SCHEMAS / "sre-partial.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_partial_validates_against_schema(validator):
    acc = SreAccumulator(W0)
    acc.fold([ev(W0 + 1, 503, 40.0), ev(W0 + 31, 200, 12.0)])
    validator.validate(orjson.loads(orjson.dumps(acc.to_partial("checkout", 0, 60))))
    validator.validate(SreAccumulator(W0).to_partial("idle", 0, 60))  # empty digest: nulls


def test_schema_examples_are_valid(validator):
    examples = sorted((SCHEMAS / "examples" / "sre-partial" / "valid").glob("*.json"))
    assert examples
    for path in examples:
        validator.validate(json.loads(path.read_text()))


def test_schema_rejects_a_broken_partial(validator):
    acc = SreAccumulator(W0)
    acc.fold([ev(W0 + 1)])
    partial = acc.to_partial("checkout", 0, 60)
    assert not validator.is_valid({**partial, "lens": "cx"})
    assert not validator.is_valid({**partial, "requests": -1})


def test_merged_window_digest_loads_in_tdigest_package():
    # Partials carry the binary form (only the joiner reads them); what leaves lensbridge on
    # the lens-windows topic is the tdigest dict.
    rng = np.random.default_rng(13)
    lat = rng.lognormal(4.0, 0.8, 4_000)
    acc = SreAccumulator(W0)
    acc.fold([ev(W0 + i * 0.01, 200, lat[i]) for i in range(4_000)])
    partial = orjson.loads(orjson.dumps(acc.to_partial("checkout", 0, 60)))
    wire = orjson.loads(orjson.dumps(merge_sre_partials([partial])))["latency_ms_digest"]
    t = tdigest.TDigest()
    t.update_from_dict(wire)
    ours = digest_from_wire(wire)
    for q in (0.5, 0.95, 0.99):
        assert t.percentile(q * 100) == pytest.approx(ours.quantile(q), rel=0.01)


# --- merge ----------------------------------------------------------------------------

_latency = itertools.count(1)


def slice_events(start_s, requests, errors, ok_status=200):
    # Distinct latencies keep every value its own centroid, so quantiles are exact.
    return [
        ev(start_s + 0.1 * i, 503 if i < errors else ok_status, float(next(_latency)))
        for i in range(requests)
    ]


def partial_of(partition, slices, ok_status=200):
    acc = SreAccumulator(1000)
    acc.fold([e for s in slices for e in slice_events(*s, ok_status=ok_status)])
    return orjson.loads(orjson.dumps(acc.to_partial("checkout", partition, 60)))


@pytest.fixture(scope="module")
def three_partials():
    return [
        # slice 1000: 1/20 exactly at 0.05 -> up; slice 1010 alone (3/10) would be down
        partial_of(0, [(1000, 20, 1), (1010, 10, 3), (1020, 10, 2)]),
        partial_of(1, [(1010, 50, 0), (1020, 10, 0), (1030, 5, 5)]),
        partial_of(2, [(1050, 4, 0)], ok_status=404),  # 404s are not errors
    ]


def test_merge_hand_computed(three_partials):
    merged = merge_sre_partials(list(reversed(three_partials)))
    # Summed slices: 1000 1/20 up, 1010 3/60 up (threshold), 1020 2/20 down,
    # 1030 5/5 down, 1050 0/4 up -> 3 of 5.
    assert merged["slices_up"] == 3 and merged["slices_with_traffic"] == 5
    assert merged["availability"] == 0.6
    assert (merged["requests"], merged["errors"]) == (109, 11)
    assert merged["error_ratio"] == 11 / 109
    assert merged["partitions"] == [0, 1, 2]
    assert (merged["lens"], merged["subject"], merged["window_start"], merged["window_end"]) == (
        "sre", "checkout", 1000, 1060)
    values = [c["m"] for p in three_partials
              for c in digest_from_any(p["latency_ms_digest"]).to_dict()["centroids"]]
    assert merged["latency_ms"] == pytest.approx(
        dict(zip(("p50", "p95", "p99"), np.quantile(values, [0.5, 0.95, 0.99]), strict=True)))
    assert merged["latency_ms_digest"]["n_values"] == 109


def test_merge_threshold_and_quantiles_are_parameters(three_partials):
    merged = merge_sre_partials(three_partials, quantiles=(0.5, 0.999), slice_error_ratio=0.0)
    assert merged["availability"] == 1 / 5  # only the error-free slice 1050 is up
    assert set(merged["latency_ms"]) == {"p50", "p99.9"}


def test_merge_is_independent_of_arrival_order(three_partials):
    orders = itertools.permutations(three_partials)
    outputs = {orjson.dumps(merge_sre_partials(list(order))) for order in orders}
    assert len(outputs) == 1


def test_merge_without_traffic_gives_none():
    merged = merge_sre_partials([SreAccumulator(1000).to_partial("idle", 0, 60)])
    assert merged["error_ratio"] is None and merged["availability"] is None
    assert merged["latency_ms"] == {"p50": None, "p95": None, "p99": None}
    assert (merged["requests"], merged["slices_with_traffic"]) == (0, 0)


def _binary_digest(values: list[float]) -> str:
    d = new_digest(100)
    d.batch_update(values)
    return base64.b64encode(d.to_bytes()).decode()


def test_merge_reads_version_1_partials_with_dict_digests(three_partials):
    # A joiner upgraded before the lens workers still merges their partials.
    v1 = [p | {"schema_version": 1, "latency_ms_digest": digest_from_any(p["latency_ms_digest"]).to_dict()}
          for p in three_partials]
    assert merge_sre_partials(v1) == merge_sre_partials(three_partials)


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda p: p.update(subject="search"), "different"),
        (lambda p: p.update(window_start=940, window_end=1000), "different"),
        (lambda p: p.update(lens="cx"), "not an SRE partial"),
        (lambda p: p.update(partition=0), "more than one partial"),
        (lambda p: p.update(requests=p["requests"] + 1), "do not add up"),
        (lambda p: p.update(latency_ms_digest=_binary_digest([5.0])), "digest holds"),
        (lambda p: p.update(latency_ms_digest="not a digest"), "malformed"),
        (lambda p: p.pop("slices"), "malformed"),
    ],
)
def test_merge_rejects_bad_inputs(three_partials, mangle, message):
    second = orjson.loads(orjson.dumps(three_partials[1]))
    mangle(second)
    with pytest.raises(ValueError, match=message):
        merge_sre_partials([three_partials[0], second])


def test_merge_of_nothing_raises():
    with pytest.raises(ValueError, match="no partials"):
        merge_sre_partials([])


def test_threshold_compares_the_ratio_not_a_product():
    # 0.29 * 100 is 28.999999999999996 in floating point: 29 errors in 100 is at the threshold.
    merged = merge_sre_partials([partial_of(0, [(1000, 100, 29)])], slice_error_ratio=0.29)
    assert merged["availability"] == 1.0
