import json

import jsonschema
import numpy as np
import orjson
import pytest
import tdigest

from app.core.ingest.events import FRUSTRATION_TYPES, RumEvent
from app.core.lenses.cx import CxAccumulator, merge_cx_partials, rolling_cx
from app.core.lenses.digest import digest_from_any
from app.core.lenses.idset import id_hash
from tests.paths import ROOT

SCHEMAS = ROOT / "schemas"
W0 = 1_700_000_040  # a window start aligned to 60 s
WINDOW_S = 60


def ev(ts_s, session, kind, view=None, cohort="mobile", **kw):
    return RumEvent(ts_s, session, kind, cohort, view_id=view, **kw)


def folded(events, start=W0):
    acc = CxAccumulator(start)
    acc.fold(events)
    return acc


def cx_validator():
    schema = json.loads((SCHEMAS / "cx-partial.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


# --- the definitions, by hand ---------------------------------------------------------


def test_two_rage_clicks_one_frustrated_session():
    acc = folded([
        ev(W0 + 1, "s1", "page_view", "v1"),
        ev(W0 + 2, "s1", "rage_click", "v1"),
        ev(W0 + 3, "s1", "rage_click", "v1"),
        ev(W0 + 4, "s2", "page_view", "v2"),
    ])
    p = acc.to_partial("mobile", 0, WINDOW_S)
    assert p["sessions"] == 2
    assert p["frustrated_sessions"] == 1
    assert p["frustration_events"] == {"rage_click": 2}
    assert p["page_views"] == 2


def test_each_frustration_type_counted_separately():
    acc = folded([ev(W0 + 1, "s1", t, "v1") for t in
                  ("dead_click", "error_click", "excessive_scroll", "dead_click")])
    assert dict(acc.frustration_events) == {"dead_click": 2, "error_click": 1,
                                            "excessive_scroll": 1}
    assert acc.frustrated_sessions == {id_hash("s1")}


def test_complete_then_abandon_is_not_abandoned():
    acc = folded([
        ev(W0 + 1, "s1", "page_view", "v1"),
        ev(W0 + 5, "s1", "complete", "v1"),
        ev(W0 + 9, "s1", "abandon", "v1"),
    ])
    assert (acc.abandons, acc.completes) == (0, 1)


def test_abandon_before_complete_is_abandoned():
    acc = folded([
        ev(W0 + 1, "s1", "page_view", "v1"),
        ev(W0 + 2, "s1", "abandon", "v1"),
        ev(W0 + 7, "s1", "complete", "v1"),  # finished loading in a hidden tab
        ev(W0 + 3, "s2", "page_view", "v2"),
        ev(W0 + 4, "s2", "abandon", "v2"),  # never completed
    ])
    assert (acc.abandons, acc.completes) == (2, 0)


def test_event_time_decides_not_arrival_order_or_batches():
    # The abandon arrives first but happened after the complete.
    acc = folded([ev(W0 + 9, "s1", "abandon", "v1"), ev(W0 + 5, "s1", "complete", "v1")])
    assert (acc.abandons, acc.completes) == (0, 1)
    split = CxAccumulator(W0)
    split.fold([ev(W0 + 9, "s1", "abandon", "v1")])
    assert (split.abandons, split.completes) == (1, 0)  # so far it was abandoned...
    split.fold([ev(W0 + 5, "s1", "complete", "v1")])
    assert (split.abandons, split.completes) == (0, 1)  # ...the earlier complete wins


def test_same_instant_counts_as_complete():
    acc = folded([ev(W0 + 5, "s1", "abandon", "v1"), ev(W0 + 5, "s1", "complete", "v1")])
    assert (acc.abandons, acc.completes) == (0, 1)


def test_events_without_view_id_use_the_session_as_view():
    acc = folded([
        ev(W0 + 1, "s1", "complete"),
        ev(W0 + 2, "s1", "abandon"),  # same (session) view: completed first
        ev(W0 + 3, "s2", "abandon"),
    ])
    assert (acc.abandons, acc.completes) == (1, 1)
    assert set(acc.views) == {id_hash("s1"), id_hash("s2")}


def test_session_spanning_two_windows_counts_in_both():
    events = [
        ev(W0 + 50, "s1", "page_view", "v1"),
        ev(W0 + 58, "s1", "rage_click", "v1"),
        ev(W0 + WINDOW_S + 3, "s1", "page_view", "v2"),
        ev(W0 + WINDOW_S + 4, "s2", "page_view", "v3"),
    ]
    first = folded([e for e in events if e.ts_s < W0 + WINDOW_S])
    second = folded([e for e in events if e.ts_s >= W0 + WINDOW_S], W0 + WINDOW_S)
    assert len(first.sessions) == 1 and len(second.sessions) == 2
    assert id_hash("s1") in first.sessions and id_hash("s1") in second.sessions
    assert len(first.frustrated_sessions) == 1 and len(second.frustrated_sessions) == 0


def test_services_count_each_view_once():
    acc = folded([
        ev(W0 + 1, "s1", "page_view", "v1", services=("catalog", "cart")),
        ev(W0 + 2, "s1", "interactive", "v1", tti_ms=900.0, services=("catalog",)),
        ev(W0 + 3, "s1", "rage_click", "v1", services=("search",)),
        ev(W0 + 4, "s2", "page_view", "v2", services=("catalog",)),
    ])
    assert acc.services() == {"cart": 1, "catalog": 2, "search": 1}


def test_tti_and_vitals_fold_into_digests():
    acc = folded([
        ev(W0 + 1, "s1", "interactive", "v1", tti_ms=1000.0),
        ev(W0 + 2, "s2", "interactive", "v2", tti_ms=3000.0),
        ev(W0 + 3, "s1", "web_vital", "v1", name="LCP", value=2500.0),
        ev(W0 + 4, "s1", "web_vital", "v1", name="CLS", value=0.1),
    ])
    p = acc.to_partial("mobile", 0, WINDOW_S)
    assert digest_from_any(p["tti_ms_digest"]).n_values == 2
    assert sorted(p["web_vitals"]) == ["CLS", "LCP"]
    assert digest_from_any(p["web_vitals"]["LCP"]).quantile(0.5) == 2500.0
    # The merged window's digest (what leaves lensbridge) loads in the pure-Python tdigest
    # package (the contract's reader); partials carry the binary form for the joiner.
    merged = orjson.loads(orjson.dumps(merge_cx_partials([p])))
    t = tdigest.TDigest()
    t.update_from_dict(merged["tti_ms_digest"])
    assert t.n == 2


def test_one_digest_update_per_fold():
    class Spy:
        calls = 0

        def batch_update(self, values):
            Spy.calls += 1
    acc = CxAccumulator(W0)
    acc._tti._digest = Spy()
    acc.fold([ev(W0 + i, "s1", "interactive", "v1", tti_ms=100.0 + i) for i in range(50)])
    assert Spy.calls == 1


@pytest.mark.parametrize("bad", [
    ev(W0 - 1, "s1", "page_view"),
    ev(W0 + 1, "s1", "interactive", tti_ms=float("nan")),
    ev(W0 + 1, "s1", "interactive"),
    ev(W0 + 1, "s1", "web_vital", name="LCP"),
])
def test_fold_is_all_or_nothing(bad):
    acc = folded([ev(W0 + 1, "s0", "page_view", "v0"), ev(W0 + 2, "s0", "interactive", tti_ms=5.0)])
    before = orjson.dumps(acc.to_state())
    good = [ev(W0 + 3, "s9", "rage_click", "v9"), ev(W0 + 4, "s9", "interactive", tti_ms=7.0)]
    with pytest.raises(ValueError):
        acc.fold(good + [bad])
    assert orjson.dumps(acc.to_state()) == before


# --- state and partials ---------------------------------------------------------------


def busy_window():
    return [
        ev(W0 + 1, "s1", "page_view", "v1", services=("catalog",)),
        ev(W0 + 2, "s1", "interactive", "v1", tti_ms=1234.5),
        ev(W0 + 2, "s1", "web_vital", "v1", name="INP", value=180.0),
        ev(W0 + 3, "s1", "rage_click", "v1"),
        ev(W0 + 4, "s1", "complete", "v1"),
        ev(W0 + 5, "s2", "page_view", "v2", services=("catalog", "cart")),
        ev(W0 + 6, "s2", "abandon", "v2"),
    ]


def test_state_round_trip_is_byte_identical():
    acc = folded(busy_window())
    state = orjson.dumps(acc.to_state())
    restored = CxAccumulator.from_state(orjson.loads(state))
    assert orjson.dumps(restored.to_state()) == state
    assert (orjson.dumps(restored.to_partial("mobile", 3, WINDOW_S))
            == orjson.dumps(acc.to_partial("mobile", 3, WINDOW_S)))


def test_restored_accumulator_folds_on_like_the_original():
    more = [ev(W0 + 20, "s3", "interactive", "v3", tti_ms=50.0 * i) for i in range(1, 40)]
    more.append(ev(W0 + 21, "s3", "web_vital", "v3", name="LCP", value=2000.0))
    live = folded(busy_window())
    restored = CxAccumulator.from_state(orjson.loads(orjson.dumps(live.to_state())))
    live.fold(more)
    restored.fold(more)
    assert orjson.dumps(restored.to_state()) == orjson.dumps(live.to_state())


def test_corrupt_restored_digest_fails_the_fold_before_any_change():
    state = folded(busy_window()).to_state()
    state = {**state, "tti_ms_digest": "Z2FyYmFnZQ=="}  # base64 of "garbage"
    acc = CxAccumulator.from_state(state)  # digests load lazily...
    before = orjson.dumps(acc.to_state())
    with pytest.raises(ValueError, match="malformed digest"):
        acc.fold([ev(W0 + 30, "s7", "page_view", "v7"),
                  ev(W0 + 31, "s7", "interactive", "v7", tti_ms=10.0)])
    assert orjson.dumps(acc.to_state()) == before  # ...and fail before counts move


def test_from_state_rejects_garbage():
    with pytest.raises(ValueError, match="malformed CX"):
        CxAccumulator.from_state({"state_version": 1})
    state = folded(busy_window()).to_state()
    with pytest.raises(ValueError, match="version"):
        CxAccumulator.from_state({**state, "state_version": 99})


def test_partial_and_examples_validate_against_the_schema():
    validator = cx_validator()
    validator.validate(orjson.loads(orjson.dumps(folded(busy_window()).to_partial("m", 1, 60))))
    validator.validate(orjson.loads(orjson.dumps(CxAccumulator(W0).to_partial("all", 0, 60))))
    examples = sorted((SCHEMAS / "examples" / "cx-partial" / "valid").glob("*.json"))
    assert examples
    for path in examples:
        validator.validate(json.loads(path.read_text()))


def test_partial_fields_by_hand():
    p = folded(busy_window()).to_partial("mobile", 3, WINDOW_S)
    assert {k: p[k] for k in ("lens", "subject", "window_start", "window_end", "partition",
                              "sessions", "page_views", "frustrated_sessions",
                              "frustration_events", "abandons", "completes", "services")} == {
        "lens": "cx", "subject": "mobile", "window_start": W0, "window_end": W0 + 60,
        "partition": 3, "sessions": 2, "page_views": 2, "frustrated_sessions": 1,
        "frustration_events": {"rage_click": 1}, "abandons": 1, "completes": 1,
        "services": {"cart": 1, "catalog": 2}}
    assert p["schema_version"] == 2


# --- merge ------------------------------------------------------------------------------


def four_partitions():
    """Per partition: (events); the sessions are disjoint (RUM keyed by session)."""
    return {
        0: [ev(W0 + 1, "a", "page_view", "a1", services=("catalog",)),
            ev(W0 + 2, "a", "rage_click", "a1"), ev(W0 + 3, "a", "rage_click", "a1"),
            ev(W0 + 4, "a", "interactive", "a1", tti_ms=1000.0)],
        1: [ev(W0 + 1, "b", "page_view", "b1", services=("catalog", "cart")),
            ev(W0 + 2, "b", "abandon", "b1"),
            ev(W0 + 3, "c", "page_view", "c1"), ev(W0 + 4, "c", "complete", "c1"),
            ev(W0 + 5, "c", "web_vital", "c1", name="LCP", value=3000.0)],
        2: [ev(W0 + 1, "d", "page_view", "d1"), ev(W0 + 2, "d", "dead_click", "d1"),
            ev(W0 + 3, "d", "interactive", "d1", tti_ms=2000.0),
            ev(W0 + 4, "d", "web_vital", "d1", name="LCP", value=1000.0)],
        3: [ev(W0 + 1, "e", "page_view", "e1", services=("cart",)),
            ev(W0 + 2, "e", "complete", "e1"), ev(W0 + 3, "e", "abandon", "e1")],
    }


def partials_of(parts, start=W0):
    # Through JSON, as the joiner reads them from the summaries topic.
    return [orjson.loads(orjson.dumps(folded(events, start).to_partial("mobile", p, WINDOW_S)))
            for p, events in parts.items()]


def test_merge_four_partitions_by_hand():
    m = merge_cx_partials(partials_of(four_partitions()))
    assert m["partitions"] == [0, 1, 2, 3]
    assert (m["lens"], m["subject"], m["window_start"], m["window_end"]) == (
        "cx", "mobile", W0, W0 + 60)
    assert (m["sessions"], m["page_views"], m["frustrated_sessions"]) == (5, 5, 2)
    assert m["frustration_events"] == {"dead_click": 1, "error_click": 0,
                                       "excessive_scroll": 0, "rage_click": 2}
    assert (m["abandons"], m["completes"]) == (1, 2)
    assert m["frustration_ratio"] == 2 / 5
    assert m["abandonment_ratio"] == 1 / 5
    assert m["services"] == {"cart": 2, "catalog": 2}
    assert m["tti_ms_digest"]["n_values"] == 2
    assert 1000.0 <= m["tti_ms"]["p50"] <= 2000.0  # two points: the digest interpolates
    assert set(m["tti_ms"]) == {"p50", "p75", "p95"}
    assert m["web_vital_quantile"] == "p75"
    assert set(m["web_vitals"]) == {"LCP"}
    assert 1000.0 <= m["web_vitals"]["LCP"] <= 3000.0
    assert m["web_vitals_digests"]["LCP"]["n_values"] == 2


def test_merge_is_order_independent_and_byte_stable():
    partials = partials_of(four_partitions())
    a = orjson.dumps(merge_cx_partials(partials))
    b = orjson.dumps(merge_cx_partials(list(reversed(partials))))
    assert a == b


def test_merge_of_nothing_measured_gives_none_ratios():
    m = merge_cx_partials([CxAccumulator(W0).to_partial("idle", 0, WINDOW_S)])
    assert m["frustration_ratio"] is None and m["abandonment_ratio"] is None
    assert m["tti_ms"] == {"p50": None, "p75": None, "p95": None}
    assert m["web_vitals"] == {}


def test_merge_rejects_mixed_or_duplicate_partials():
    p0 = CxAccumulator(W0).to_partial("mobile", 0, WINDOW_S)
    with pytest.raises(ValueError, match="duplicate partition"):
        merge_cx_partials([p0, p0])
    with pytest.raises(ValueError, match="several"):
        merge_cx_partials([p0, CxAccumulator(W0).to_partial("desktop", 1, WINDOW_S)])
    with pytest.raises(ValueError, match="several"):
        merge_cx_partials([p0, CxAccumulator(W0 + 60).to_partial("mobile", 1, WINDOW_S)])
    with pytest.raises(ValueError):
        merge_cx_partials([])
    broken = {k: v for k, v in p0.items() if k != "sessions"}
    with pytest.raises(ValueError, match="malformed CX partial"):
        merge_cx_partials([broken])


def test_tti_quantiles_within_one_percent_of_numpy():
    rng = np.random.default_rng(42)
    tti = rng.lognormal(mean=np.log(2500.0), sigma=0.6, size=20_000)
    parts = {p: [ev(W0 + 1 + (i % 50), f"s{p}-{i % 700}", "interactive", f"v{p}-{i}",
                    tti_ms=float(x)) for i, x in enumerate(tti[p::4])] for p in range(4)}
    m = merge_cx_partials(partials_of(parts), tti_quantiles=(0.5, 0.75, 0.95, 0.99))
    for q in (0.5, 0.75, 0.95, 0.99):
        exact = float(np.quantile(tti, q))
        got = m["tti_ms"][f"p{round(q * 100)}"]
        assert abs(got - exact) / exact < 0.01, (q, got, exact)
    assert m["tti_ms_digest"]["n_values"] == 20_000


# --- rolling view ----------------------------------------------------------------------


def test_rolling_view_adds_counts_and_bounds_distinct_sessions():
    w1 = [ev(W0 + 1, "s1", "page_view", "v1"), ev(W0 + 2, "s1", "rage_click", "v1"),
          ev(W0 + 3, "s2", "page_view", "v2"), ev(W0 + 4, "s1", "interactive", "v1", tti_ms=100.0)]
    w2 = [ev(W0 + 61, "s1", "page_view", "v3"),  # s1 again: spans both windows
          ev(W0 + 62, "s3", "page_view", "v4"), ev(W0 + 63, "s3", "abandon", "v4"),
          ev(W0 + 64, "s3", "interactive", "v4", tti_ms=300.0)]
    m1 = merge_cx_partials(partials_of({0: w1}))
    m2 = merge_cx_partials(partials_of({0: w2}, W0 + 60))
    r = rolling_cx([m2, m1])  # any order
    assert (r["window_start"], r["window_end"], r["windows"]) == (W0, W0 + 120, 2)
    assert r["session_windows"] == 4  # s1, s2 | s1, s3: s1 counted twice
    assert (r["distinct_sessions_min"], r["distinct_sessions_max"]) == (2, 4)  # truth: 3
    assert r["frustrated_session_windows"] == 1
    assert r["frustration_ratio"] == 1 / 4
    assert (r["page_views"], r["abandons"], r["abandonment_ratio"]) == (4, 1, 1 / 4)
    assert r["tti_ms_digest"]["n_values"] == 2
    assert 100.0 <= r["tti_ms"]["p50"] <= 300.0
    assert "sessions" not in r  # never mistaken for a distinct count


def test_rolling_view_rejects_mixed_cohorts_and_duplicates():
    m = merge_cx_partials([CxAccumulator(W0).to_partial("mobile", 0, WINDOW_S)])
    other = merge_cx_partials([CxAccumulator(W0).to_partial("desktop", 0, WINDOW_S)])
    with pytest.raises(ValueError, match="several cohorts"):
        rolling_cx([m, other])
    with pytest.raises(ValueError, match="duplicate window"):
        rolling_cx([m, m])
    with pytest.raises(ValueError):
        rolling_cx([])


def _string_ids(events):
    """The id fields of a state v1/v2 value (ids as text) for these events."""
    views = {}
    for e in events:
        if e.type in ("complete", "abandon"):
            marks = views.setdefault(e.view_id or e.session_id, [None, None])
            i = 0 if e.type == "complete" else 1
            marks[i] = e.ts_s if marks[i] is None else min(marks[i], e.ts_s)
    return {"sessions": sorted({e.session_id for e in events}),
            "frustrated_sessions": sorted({e.session_id for e in events
                                           if e.type in FRUSTRATION_TYPES}),
            "views": [[v, c, a] for v, (c, a) in sorted(views.items())],
            "view_services": sorted({(e.view_id or e.session_id, s)
                                     for e in events for s in e.services})}


def test_state_written_before_binary_digests_still_restores():
    # Version 1 table values carry the digests as wire dicts and the ids as text; an
    # upgraded worker reads them (hashing the ids).
    acc = folded(busy_window())
    state = acc.to_state()
    partial = acc.to_partial("web", 0, 60)
    v1 = state | _string_ids(busy_window()) | {
        "state_version": 1, "tti_ms_digest": partial["tti_ms_digest"],
        "web_vitals": partial["web_vitals"]}
    del v1["ids_over_cap"]
    restored = CxAccumulator.from_state(orjson.loads(orjson.dumps(v1)))
    assert orjson.dumps(restored.to_partial("web", 0, 60)) == orjson.dumps(partial)
    assert isinstance(state["tti_ms_digest"], str)  # version 2 stores the binary form
    v2 = {**v1, "state_version": 2, "tti_ms_digest": state["tti_ms_digest"],
          "web_vitals": state["web_vitals"]}
    assert orjson.dumps(CxAccumulator.from_state(v2).to_state()) == orjson.dumps(state)
