"""`lensbridge simulate`: determinism, input contracts, exact truth, incidents that bite."""
import asyncio
import json
import math
import time
from collections import defaultdict

import numpy as np
import orjson
import pytest

from app.core.ingest.decode import DecodeLimits, decode_requests, decode_rum
from app.core.ingest.events import FRUSTRATION_TYPES, RUM_TYPES, WEB_VITALS
from app.simulate import (
    ScenarioError,
    aligned_start,
    compute_truth,
    expected_verdicts,
    generate,
    generate_lists,
    live,
    load_scenario,
    parse_scenario,
    write_files,
)
from tests.paths import ROOT

SCENARIOS = ROOT / "scenarios"
START_S = 1_767_225_600  # 2026-01-01T00:00:00Z, a multiple of 60
VERDICTS = {"sre_dip_user_impacting", "sre_dip_no_user_impact",
            "cx_dip_explained", "cx_dip_unexplained"}


def small(**overrides) -> dict:
    """A 20-window scenario, small enough to recompute everything by hand."""
    sc = {
        "name": "small", "window_s": 60, "duration_windows": 20, "warmup_windows": 5,
        "requests_per_window": 400, "sessions_per_window": 12,
        "services": [
            {"name": "api", "share": 2, "latency_ms": {"median": 50, "sigma": 0.5},
             "error_ratio": 0.01, "client_error_ratio": 0.05},
            {"name": "db", "share": 1, "latency_ms": {"median": 20, "sigma": 0.3},
             "error_statuses": [503], "client_error_statuses": [404]},
            {"name": "batch", "share": 0.5, "latency_ms": {"median": 300, "sigma": 0.7}}],
        "cohorts": [
            {"name": "web", "share": 2, "depends_on": ["api", {"service": "db", "share": 0.5}],
             "frustration_ratio": 0.1, "abandon_ratio": 0.1, "close_after_complete_ratio": 0.2,
             "tti_ms": {"median": 1500, "sigma": 0.4},
             "view_dwell_s": {"median": 20, "sigma": 0.5}},
            {"name": "app", "share": 1, "depends_on": ["api"], "attributes": {"device": "mobile"},
             "tti_ms": {"median": 2500, "sigma": 0.4}}],
        "incidents": [
            {"kind": "errors", "target": "api", "start_window": 6, "duration_windows": 2,
             "magnitude": 0.3, "expect": "sre_dip_user_impacting"},
            {"kind": "frustration", "target": "app", "start_window": 11, "duration_windows": 2,
             "magnitude": 0.5, "expect": "cx_dip_unexplained"},
            {"kind": "latency", "target": "batch", "start_window": 15, "duration_windows": 2,
             "magnitude": 5, "expect": "sre_dip_no_user_impact"}]}
    sc.update(overrides)
    return sc


@pytest.fixture(scope="module")
def two_hours():
    sc = load_scenario(SCENARIOS / "two_hours.json")
    t0 = time.perf_counter()
    requests, rum = generate_lists(sc, START_S, 11)
    elapsed_s = time.perf_counter() - t0
    return sc, requests, rum, compute_truth(sc, requests, rum, START_S), elapsed_s


@pytest.fixture(scope="module")
def demo():
    sc = load_scenario(SCENARIOS / "demo.json")
    requests, rum = generate_lists(sc, START_S, 3)
    return sc, requests, rum, compute_truth(sc, requests, rum, START_S), 0.0


# ---- determinism, order, contracts ---------------------------------------------------
def test_same_seed_same_events_other_seed_other_events():
    sc = parse_scenario(small())
    first = list(generate(sc, START_S, 7))
    assert first == list(generate(sc, START_S, 7))
    assert first != list(generate(sc, START_S, 8))
    assert {topic for topic, _ in first} == {"requests", "rum"}


def test_stream_and_files_are_sorted_by_ts(tmp_path):
    sc = parse_scenario(small())
    stream = [e["ts"] for _, e in generate(sc, START_S, 1)]
    assert stream == sorted(stream)
    summary = write_files(sc, tmp_path, START_S + 17, 1)  # start aligned down to the window
    assert summary["start_s"] == START_S
    for name, key in (("requests.ndjson", "requests"), ("rum.ndjson", "rum")):
        lines = (tmp_path / name).read_bytes().splitlines()
        ts = [orjson.loads(line)["ts"] for line in lines]
        assert len(ts) == summary[key] > 0
        assert ts == sorted(ts)
        assert START_S <= ts[0] and ts[-1] < START_S + 20 * 60


def _check_request(e: dict) -> None:
    assert isinstance(e["ts"], float) and e["ts"] >= 0
    assert isinstance(e["service"], str) and e["service"]
    assert isinstance(e["latency_ms"], (int, float)) and e["latency_ms"] >= 0
    assert type(e["status"]) is int and 100 <= e["status"] <= 599
    for key in ("route", "method", "trace_id", "session_id"):
        assert key not in e or isinstance(e[key], str)


def _check_rum(e: dict) -> None:
    assert isinstance(e["ts"], float) and isinstance(e["session_id"], str) and e["session_id"]
    assert e["type"] in RUM_TYPES and isinstance(e["cohort"], str) and e["cohort"]
    assert isinstance(e["view_id"], str)
    if e["type"] == "interactive":
        assert e["tti_ms"] >= 0
    if e["type"] == "web_vital":
        assert e["name"] in WEB_VITALS and e["value"] >= 0
    if e["type"] == "page_view":
        assert all(isinstance(s, str) and s for s in e["services"])


@pytest.mark.parametrize("name", ["demo", "sre_truth", "cx_truth"])
def test_every_event_meets_the_input_contract(name):
    sc = load_scenario(SCENARIOS / f"{name}.json")
    requests, rum = generate_lists(sc, START_S, 5)
    for e in requests:
        _check_request(e)
    for e in rum:
        _check_rum(e)
    now_s, limits = START_S + 10 * 86400, DecodeLimits(max_message_bytes=1 << 30)
    # The real decoder, one NDJSON message per topic: nothing may be rejected.
    raw = b"\n".join(orjson.dumps(e) for e in requests)
    decoded, rejected = decode_requests(raw, now_s, limits)
    assert rejected == [] and len(decoded) == len(requests)
    if rum:
        decoded, rejected = decode_rum(b"\n".join(orjson.dumps(e) for e in rum), now_s, limits)
        assert rejected == [] and len(decoded) == len(rum)
        assert {d.cohort for d in decoded} == {c.name for c in sc.cohorts}


# ---- truth ------------------------------------------------------------------------------
def _recompute_sre(requests: list[dict]) -> dict:
    groups = defaultdict(list)
    for e in requests:
        groups[(math.floor(e["ts"] / 60) * 60, e["service"])].append(e)
    out = {}
    for key, events in groups.items():
        lat = np.array([e["latency_ms"] for e in events])
        slices = defaultdict(lambda: [0, 0])
        for e in events:
            s = slices[math.floor(e["ts"] / 10) * 10]
            s[0] += 1
            s[1] += e["status"] >= 500
        up = sum(1 for n, err in slices.values() if err / n <= 0.05)
        out[key] = {"requests": len(events), "errors": sum(e["status"] >= 500 for e in events),
                    "p": list(np.percentile(lat, [50, 95, 99])), "availability": up / len(slices)}
    return out


def _recompute_cx(rum: list[dict]) -> dict:
    out = defaultdict(lambda: {"sessions": set(), "frustrated": set(), "views": 0, "ab": 0,
                               "done": 0, "tti": [], "types": defaultdict(int)})
    completed_at = {e["view_id"]: e["ts"] for e in rum if e["type"] == "complete"}
    for e in rum:
        a = out[(math.floor(e["ts"] / 60) * 60, e["cohort"])]
        a["sessions"].add(e["session_id"])
        a["views"] += e["type"] == "page_view"
        a["done"] += e["type"] == "complete"
        if e["type"] == "abandon" and not completed_at.get(e["view_id"], math.inf) <= e["ts"]:
            a["ab"] += 1
        if e["type"] in FRUSTRATION_TYPES:
            a["frustrated"].add(e["session_id"])
            a["types"][e["type"]] += 1
        if e["type"] == "interactive":
            a["tti"].append(e["tti_ms"])
    return out


def test_truth_matches_an_independent_recomputation(tmp_path):
    sc = parse_scenario(small())
    write_files(sc, tmp_path, START_S, 3)
    read = lambda name: [orjson.loads(x) for x in (tmp_path / name).read_bytes().splitlines()]
    requests, rum = read("requests.ndjson"), read("rum.ndjson")
    truth = json.loads((tmp_path / "truth.json").read_text())
    sre = _recompute_sre(requests)
    assert len(truth["sre"]) == len(sre) == 20 * 3
    for row in truth["sre"]:
        want = sre[(row["window_start"], row["service"])]
        assert (row["requests"], row["errors"]) == (want["requests"], want["errors"])
        got = [row["latency_p50_ms"], row["latency_p95_ms"], row["latency_p99_ms"]]
        assert got == pytest.approx(want["p"], rel=1e-12)
        assert row["availability"] == want["availability"]
    cx = _recompute_cx(rum)
    assert len(truth["cx"]) == len(cx)
    for row in truth["cx"]:
        a = cx[(row["window_start"], row["cohort"])]
        assert row["sessions"] == len(a["sessions"])
        assert row["frustrated_sessions"] == len(a["frustrated"])
        assert row["frustration_events"] == {t: a["types"][t] for t in FRUSTRATION_TYPES}
        assert row["page_views"] == a["views"]
        assert (row["abandons"], row["completes"]) == (a["ab"], a["done"])
        if a["tti"]:
            want = np.percentile(a["tti"], [50, 75, 95])
            assert [row["tti_p50_ms"], row["tti_p75_ms"], row["tti_p95_ms"]] == pytest.approx(want)


def test_sre_truth_fixture_has_404s_503s_and_empty_slices():
    sc = load_scenario(SCENARIOS / "sre_truth.json")
    requests, rum = generate_lists(sc, START_S, 1)
    statuses = {e["status"] for e in requests}
    assert {404, 503} <= statuses and rum == []
    rows = compute_truth(sc, requests, rum, START_S)["sre"]
    assert len({r["service"] for r in rows}) == 10 and len({r["window_start"] for r in rows}) == 30
    n404 = sum(e["status"] == 404 for e in requests)
    assert sum(r["errors"] for r in rows) == sum(e["status"] >= 500 for e in requests) < n404
    assert any(len(r["slices"]) < 6 for r in rows if r["service"] == "notify")
    assert any(0 < r["availability"] < 1 for r in rows if r["service"] == "inventory")


def test_cx_truth_fixture_has_the_tricky_cases():
    sc = load_scenario(SCENARIOS / "cx_truth.json")
    _, rum = generate_lists(sc, START_S, 1)
    windows, views, rage = defaultdict(set), defaultdict(list), defaultdict(int)
    for e in rum:
        windows[e["session_id"]].add(math.floor(e["ts"] / 60))
        views[e["view_id"]].append(e)
        rage[e["session_id"]] += e["type"] == "rage_click"
    assert len({e["cohort"] for e in rum}) == 4
    assert sum(len(w) >= 2 for w in windows.values()) > 100  # sessions spanning windows
    assert sum(n >= 2 for n in rage.values()) > 10  # repeated rage clicks in a session
    done_then_gone = before_done = 0
    for evs in views.values():
        kinds = [e["type"] for e in evs]
        if "complete" in kinds and "abandon" in kinds:
            done, gone = evs[kinds.index("complete")], evs[kinds.index("abandon")]
            assert gone["ts"] > done["ts"]
            # kept in one window so per-window counts never need cross-window view state
            assert math.floor(gone["ts"] / 60) == math.floor(done["ts"] / 60)
            done_then_gone += 1
        elif "abandon" in kinds:
            before_done += 1
    assert done_then_gone > 50 and before_done > 50


# ---- incidents move what they should ----------------------------------------------------
def _rows(truth: dict, lens: str, key: str, subject: str, start: int, window_s: int) -> dict:
    return {(r["window_start"] - start) // window_s: r
            for r in truth[lens] if r[key] == subject}


def _quiet(sc, window: int) -> bool:
    """Far from every incident and past the warm-up: a baseline window."""
    return window >= sc.warmup_windows and all(
        not i.start_window - 2 <= window < i.end_window + 3 for i in sc.incidents)


def _ratio(rows: dict, windows, num: str, den: str) -> float:
    return sum(rows[w][num] for w in windows if w in rows) / max(
        1, sum(rows[w][den] for w in windows if w in rows))


def _median(rows: dict, windows, key: str) -> float:
    return float(np.median([rows[w][key] for w in windows if w in rows and rows[w][key]]))


@pytest.mark.parametrize("data", ["demo", "two_hours"])
def test_incidents_move_their_intended_metrics(data, request):
    sc, _, _, truth, _ = request.getfixturevalue(data)
    peak = [w for w in range(sc.duration_windows) if _quiet(sc, w) and not sc.is_off_peak(w)]
    for inc in sc.incidents:
        during = range(inc.start_window, inc.end_window)
        if inc.kind in ("latency", "errors"):
            rows = _rows(truth, "sre", "service", inc.target, START_S, sc.window_s)
            base = [w for w in range(sc.duration_windows) if _quiet(sc, w)]
            if inc.kind == "errors":
                err = _ratio(rows, during, "errors", "requests")
                assert err > 3 * max(_ratio(rows, base, "errors", "requests"), 0.005), inc.name
            else:
                p95 = min(rows[w]["latency_p95_ms"] for w in during)
                assert p95 > 2 * _median(rows, base, "latency_p95_ms"), inc.name
            assert min(rows[w]["requests"] for w in during) >= 50, inc.name  # enough to see
        cx_only = inc.kind in ("frustration", "abandonment")
        for c in sc.impacted_cohorts(inc) + ((inc.target,) if cx_only else ()):
            rows = _rows(truth, "cx", "cohort", c, START_S, sc.window_s)
            if inc.kind == "abandonment":
                metric = ("abandons", "page_views")
            else:  # frontend bugs, failed and slow backend calls all frustrate users
                metric = ("frustrated_sessions", "sessions")
            assert _ratio(rows, during, *metric) > 3 * _ratio(rows, peak, *metric), (inc.name, c)
            if inc.kind == "latency":
                assert _median(rows, during, "tti_p75_ms") > 1.3 * _median(rows, peak, "tti_p75_ms")


@pytest.mark.parametrize("data", ["demo", "two_hours"])
def test_no_user_impact_incidents_reach_few_or_no_users(data, request):
    sc, _, _, truth, _ = request.getfixturevalue(data)
    busiest = max(r["sessions"] for r in truth["cx"])
    for inc in sc.incidents:
        if inc.expect != "sre_dip_no_user_impact":
            continue
        windows = {START_S + w * sc.window_s for w in range(inc.start_window, inc.end_window)}
        linked = [r for r in truth["cx"] if r["window_start"] in windows
                  and inc.target in r["services"]]
        if sc.no_impact_reason(inc) == "no_dependent_cohort":
            assert linked == [], inc.name
        else:  # off-peak: the cohorts that use it are nearly empty
            assert sc.no_impact_reason(inc) == "off_peak"
            assert all(r["sessions"] <= 0.25 * busiest for r in linked), inc.name
            assert sum(r["page_views"] for r in linked) < 0.1 * busiest * len(windows)


@pytest.mark.parametrize("data", ["demo", "two_hours"])
def test_unexplained_dips_have_a_flat_backend(data, request):
    sc, _, _, truth, _ = request.getfixturevalue(data)
    for inc in sc.incidents:
        if inc.expect != "cx_dip_unexplained":
            continue
        cohort = next(c for c in sc.cohorts if c.name == inc.target)
        around = range(inc.start_window - 1, inc.end_window + 1)
        base = [w for w in range(sc.duration_windows) if _quiet(sc, w)]
        for dep in cohort.depends_on:
            rows = _rows(truth, "sre", "service", dep.service, START_S, sc.window_s)
            assert _ratio(rows, around, "errors", "requests") < 0.02
            assert max(rows[w]["latency_p95_ms"] for w in around) < 1.5 * _median(
                rows, base, "latency_p95_ms")


def test_two_hours_size_shape_and_speed(two_hours):
    sc, requests, rum, _, elapsed_s = two_hours
    assert sc.duration_windows * sc.window_s == 7200
    assert len(requests) + len(rum) >= 250_000
    assert 6 <= len(sc.services) <= 8 and 4 <= len(sc.cohorts) <= 6
    assert {i.expect for i in sc.incidents} | {"cx_dip_explained"} == VERDICTS
    off_peak = [sc.is_off_peak(i.start_window) for i in sc.incidents]
    assert any(off_peak) and not all(off_peak)
    assert elapsed_s < 30


# ---- expected.json --------------------------------------------------------------------
def test_expected_verdicts_of_the_demo():
    sc = load_scenario(SCENARIOS / "demo.json")
    exp = expected_verdicts(sc, START_S, 1)
    assert {v["kind"] for v in exp["verdicts"]} == VERDICTS
    assert min(i["start_window"] for i in exp["incidents"]) >= 12
    assert len(sc.services) == 5 and len(sc.cohorts) == 4
    for v in exp["verdicts"]:
        assert v["incident_start"] == START_S + v["start_window"] * sc.window_s
        assert v["incident_end"] == START_S + v["end_window"] * sc.window_s
    explained = [v for v in exp["verdicts"] if v["kind"] == "cx_dip_explained"]
    impacting = next(v for v in exp["verdicts"] if v["kind"] == "sre_dip_user_impacting")
    assert {v["subject"] for v in explained} == set(impacting["cohorts"]) == {
        "buyers_web", "buyers_mobile"}
    assert all(v["top_candidate"] == impacting["subject"] == "checkout" for v in explained)
    reasons = {v["subject"]: v["reason"] for v in exp["verdicts"]
               if v["kind"] == "sre_dip_no_user_impact"}
    assert reasons == {"reporting": "no_dependent_cohort", "search": "off_peak"}


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.json")), ids=lambda p: p.name)
def test_bundled_scenarios_load(path):
    sc = load_scenario(path)
    assert sc.name == path.stem and sc.incidents


# ---- loader errors ------------------------------------------------------------------
def _mutate(fn):
    data = small()
    fn(data)
    return data


def _set(where, **values):
    """A mutation of the small scenario: update the object at `where` (a path of keys)."""
    def apply(d):
        for key in where:
            d = d[key]
        d.update(values)
    return apply


BAD = [
    (lambda d: d.pop("window_s"), "window_s", "missing"),
    (_set((), windw_s=60), "windw_s", "unknown field"),
    (_set((), duration_windows="20"), "duration_windows", "integer"),
    (_set(("services", 1), share=-1), "services[1].share", ">"),
    (lambda d: d["services"][0]["latency_ms"].pop("sigma"),
     "services[0].latency_ms.sigma", "missing"),
    (lambda d: d["cohorts"][0]["depends_on"].append("nope"),
     "cohorts[0].depends_on[2]", "unknown service"),
    (_set(("cohorts", 1), name="web"), "cohorts[1].name", "duplicate"),
    (_set(("incidents", 0), target="web"), "incidents[0].target", "not one of"),
    (_set(("incidents", 0), start_window=2), "incidents[0].start_window", "warm-up"),
    (_set(("incidents", 2), expect="sre_dip_user_impacting"), "incidents[2].expect", "no cohort"),
    (_set(("incidents", 0), expect="sre_dip_no_user_impact"), "incidents[0].expect", "peak"),
    (_set(("incidents", 1), expect="cx_dip_explained"), "incidents[1].expect", "can expect"),
    (_set(("incidents", 1), start_window=7), "incidents[1].start_window", "explained"),
    (_set(("incidents", 2), duration_windows=9), "incidents[2].duration_windows", "past the end"),
]


@pytest.mark.parametrize("mutation,field,words", BAD, ids=[b[1] for b in BAD])
def test_loader_errors_name_the_file_and_field(tmp_path, mutation, field, words):
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(_mutate(mutation)))
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    assert err.value.source == str(path) and err.value.field == field
    assert str(err.value).startswith(f"{path}: {field}: ") and words in str(err.value)


def test_loader_reports_bad_json_with_its_position(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"name": "x",\n  "window_s": }')
    with pytest.raises(ScenarioError, match=r"broken.json: invalid JSON at line 2 column 15"):
        load_scenario(path)


def test_off_peak_is_recognised_from_the_profile():
    data = small(traffic_profile=[{"window": 0}, {"window": 13}, {"window": 14, "sessions": 0.1}])
    data["incidents"][2].update(target="api", expect="sre_dip_no_user_impact")
    sc = parse_scenario(data)
    assert sc.is_off_peak(15) and not sc.is_off_peak(13)
    assert sc.no_impact_reason(sc.incidents[2]) == "off_peak"
    assert sc.sessions_multiplier(20) == pytest.approx(0.1) and sc.requests_multiplier(20) == 1


# ---- live pacing ---------------------------------------------------------------------
class FakeClock:
    def __init__(self, t: float):
        self.t = t
        self.slept_s = 0.0

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.t += seconds
        self.slept_s += seconds


def test_live_sends_each_event_when_the_clock_reaches_it():
    sc = parse_scenario(small(duration_windows=8, incidents=[]))
    clock, sent = FakeClock(START_S + 25.0), []

    async def send(topic, event):
        sent.append((clock.t, topic, event))

    n = asyncio.run(live(sc, send, clock.now, clock.sleep, seed=4))
    expected = list(generate(sc, aligned_start(sc, START_S + 25.0), 4))
    assert n == len(sent) == len(expected)
    assert [(topic, e) for _, topic, e in sent] == expected
    for at, _, e in sent:  # never late, at most min_sleep_s early; the elapsed part at once
        assert max(e["ts"], START_S + 25.0) - 0.05 <= at <= max(e["ts"], START_S + 25.0) + 1e-6
    assert clock.t == pytest.approx(sent[-1][2]["ts"], abs=0.05)


def test_live_speed_compresses_pacing_not_timestamps():
    sc = parse_scenario(small(duration_windows=8, incidents=[]))
    clock, sent = FakeClock(100.0), []

    async def send(topic, event):
        sent.append(event["ts"])

    asyncio.run(live(sc, send, clock.now, clock.sleep, speed=10, start_s=START_S))
    assert sent[0] >= START_S and sent == sorted(sent)
    assert clock.slept_s == pytest.approx((sent[-1] - START_S) / 10, abs=0.05)
    with pytest.raises(ValueError):
        asyncio.run(live(sc, send, clock.now, clock.sleep, speed=0))
