"""The joiner's state transition with scripted windows: the four verdicts, candidate ranking,
warm-up, the minimum-volume guard, lens skew, lifecycle, restart, schema.

Traffic is scripted, not random: every subject's numbers follow the fixed NOISE list, and
an incident is a set of overrides for some windows of one subject.
"""
import json
import math

import numpy as np
import orjson
import pytest
from jsonschema import Draft202012Validator

from app.core.detect.correlate import Correlator
from app.core.detect.dips import DetectionConfig
from app.core.detect.incidents import alert_id
from app.core.detect.stats import pearson
from tests.paths import ROOT
from tests.unit.core.detect.scripted import (
    CHECKOUT_SLOW,
    GAP,
    MIXED,
    SERVICES,
    WEB_FRUSTRATED,
    W,
    brief,
    by_subject,
    cx_window,
    dumps,
    firing_at,
    run,
    run_lens_first,
    script,
    sre_window,
    ws,
)

SCHEMA = json.loads((ROOT / "schemas"
                     / "alert.schema.json").read_text())


# ---- the four verdicts ----------------------------------------------------------------------
def test_both_lenses_dip_explained_and_user_impacting():
    alerts, _ = run(script(25, [CHECKOUT_SLOW, WEB_FRUSTRATED]))
    assert firing_at(alerts, 15) == {("sre_dip_user_impacting", "checkout"),
                                     ("cx_dip_explained", "web")}
    assert {a["subject"] for a in alerts} == {"checkout", "web"}  # mobile, search stay quiet
    web = by_subject(alerts, "web")[0]
    assert [c["service"] for c in web["candidates"]] == ["checkout"]
    assert web["candidates"][0]["dependency_share"] == pytest.approx(0.6, abs=0.01)
    assert web["severity"] == "critical"  # web holds 4/7 of the sessions
    checkout = by_subject(alerts, "checkout")[0]
    assert checkout["cohorts"] == ["web"]
    assert checkout["impact"]["session_share"] == pytest.approx(4 / 7, abs=0.01)
    assert checkout["related_alert_ids"] == [web["alert_id"]]
    assert web["related_alert_ids"] == [checkout["alert_id"]]
    lenses = {(e["lens"], e["subject"]) for e in web["evidence"]}
    assert lenses == {("cx", "web"), ("sre", "checkout")}


def test_cx_dip_with_flat_backend_is_unexplained():
    alerts, _ = run(script(25, [WEB_FRUSTRATED]))
    assert firing_at(alerts, 15) == {("cx_dip_unexplained", "web")}
    web = alerts[0]
    assert web["candidates"] == [] and web["services"] == []
    flat = [e for e in web["evidence"] if e["lens"] == "sre"]
    assert {e["subject"] for e in flat} == {"checkout", "search"}
    assert not any(e["dip"] for e in flat)
    assert "frontend" in web["summary"]


def test_sre_dip_with_flat_dependents_has_no_user_impact():
    alerts, _ = run(script(25, [("sre", "search", range(15, 17), {"error_ratio": 0.08})]))
    assert firing_at(alerts, 15) == {("sre_dip_no_user_impact", "search")}
    impact = alerts[0]["impact"]
    assert impact["reasons"] == ["dependent_cohorts_flat"]
    assert impact["dependent_cohorts"] == ["mobile", "web"]
    assert alerts[0]["severity"] == "info"
    assert "dependent cohorts flat (mobile, web)" in alerts[0]["summary"]


def test_sre_dip_off_peak_says_so():
    night = ("sre", "search", range(15, 17), {"requests": 400, "error_ratio": 0.2})
    alerts, _ = run(script(25, [night]))
    assert firing_at(alerts, 15) == {("sre_dip_no_user_impact", "search")}
    impact = alerts[0]["impact"]
    assert impact["off_peak"] and impact["reasons"][0] == "off_peak"
    assert impact["traffic_vs_peak"] == pytest.approx(0.13, abs=0.01)
    assert "traffic at 13% of its usual peak (off-peak)" in alerts[0]["summary"]


def test_sre_dip_of_a_service_nobody_depends_on():
    services = {**SERVICES, "batch": 1000}
    alerts, _ = run(script(25, [("sre", "batch", range(15, 17), {"p95": 900.0})], services))
    assert firing_at(alerts, 15) == {("sre_dip_no_user_impact", "batch")}
    assert alerts[0]["impact"]["reasons"] == ["no_dependent_cohorts"]


def test_without_links_every_service_and_cohort_is_considered():
    cohorts = {"web": (400, {}), "mobile": (300, {})}
    alerts, _ = run(script(25, [CHECKOUT_SLOW, WEB_FRUSTRATED], cohorts=cohorts))
    assert firing_at(alerts, 15) == {("sre_dip_user_impacting", "checkout"),
                                     ("cx_dip_explained", "web")}
    web = by_subject(alerts, "web")[0]
    assert web["candidates"][0]["dependency_share"] is None
    assert web["impact"]["dependency_links"] is False
    assert by_subject(alerts, "checkout")[0]["impact"]["dependent_cohorts"] == ["mobile", "web"]


# ---- ranking ------------------------------------------------------------------------------
def test_candidates_ranked_by_size_alignment_and_dependency_share():
    services = {"a": 2000, "b": 2000, "c": 2000}
    cohorts = {"shop": (400, {"a": 0.6, "b": 0.6, "c": 0.1})}
    changes = [("sre", "a", [15], {"p95": 600.0}),  # same window, big share
               ("sre", "b", [14], {"p95": 600.0}),  # one window earlier
               ("sre", "c", [15], {"p95": 600.0}),  # same window, small share
               ("cx", "shop", [15], {"frustration": 0.25})]
    alerts, _ = run(script(25, changes, services, cohorts))
    shop = [a for a in alerts if a["subject"] == "shop" and a["status"] == "firing"][0]
    ranked = [(c["service"], c["offset_windows"]) for c in shop["candidates"]]
    assert ranked == [("a", 0), ("b", -1), ("c", 0)]
    a, b, c = shop["candidates"]
    assert a["score"] == pytest.approx(a["size"] * 1.0 * a["dependency_share"], abs=1e-5)
    assert b["score"] == pytest.approx(b["size"] * 0.5 * b["dependency_share"], abs=1e-5)
    assert "alignment 0.50 (1 window(s) earlier)" in b["explanation"]
    assert shop["summary"].endswith(f"likely cause: service a latency_p95_ms "
                                    f"{a['change'] * 100:+.0f}% (score {a['score']:.2f}).")


# ---- warm-up and volume guard ----------------------------------------------------------------
def test_no_verdict_during_warm_up():
    early = run(script(20, [("sre", "checkout", range(5, 8), {"p95": 900.0}),
                            ("cx", "web", range(5, 8), {"frustration": 0.3})]))[0]
    assert early == []
    just_after = run(script(20, [("sre", "checkout", [10], {"p95": 900.0})]))[0]
    assert firing_at(just_after, 10) == {("sre_dip_no_user_impact", "checkout")}


def test_a_handful_of_errors_at_low_traffic_is_not_a_dip():
    three_am = ("sre", "search", [15], {"requests": 60, "error_ratio": 0.05})
    three_errors_of_ten = ("sre", "search", [16], {"requests": 10, "error_ratio": 0.3})
    assert run(script(25, [three_am, three_errors_of_ten]))[0] == []
    peak = ("sre", "search", [15], {"requests": 3000, "error_ratio": 0.05})
    alerts = run(script(25, [peak]))[0]
    assert firing_at(alerts, 15) == {("sre_dip_no_user_impact", "search")}
    assert alerts[0]["evidence"][0]["metric"] == "error_ratio"


# ---- lens skew ------------------------------------------------------------------------------


def test_lens_skew_gives_byte_identical_alerts():
    windows = script(70, MIXED)
    aligned = run(windows)[0]
    assert len({a["alert_id"] for a in aligned}) >= 5
    assert dumps(run_lens_first(windows, "sre")) == dumps(aligned)
    assert dumps(run_lens_first(windows, "cx")) == dumps(aligned)


def test_cx_lagging_by_a_few_windows_gives_the_same_alerts():
    windows = script(70, MIXED)
    corr, alerts = Correlator(), []
    for i in range(len(windows) + 7):
        if i < len(windows):
            for m in windows[i][0]:
                alerts += corr.on_window(m)
            alerts += corr.on_lens_complete("sre", ws(i) + W)
        j = i - 7
        if 0 <= j < len(windows):
            for m in windows[j][1]:
                alerts += corr.on_window(m)
            alerts += corr.on_lens_complete("cx", ws(j) + W)
    assert dumps(alerts) == dumps(run(windows)[0])


def test_decisions_wait_for_both_lenses():
    windows = script(25, [CHECKOUT_SLOW])
    corr = Correlator()
    for i, (sre, _) in enumerate(windows):
        for m in sre:
            corr.on_window(m)
        assert corr.on_lens_complete("sre", ws(i) + W) == []
    alerts = []
    for i, (_, cx) in enumerate(windows):
        for m in cx:
            corr.on_window(m)
        alerts += corr.on_lens_complete("cx", ws(i) + W)
        # window 15 needs window 16 of both lenses (lag 1)
        assert bool(alerts) == (i >= 16)


def test_a_stalled_lens_stops_holding_decisions_after_max_pending_windows():
    cfg = DetectionConfig(max_pending_windows=5)
    corr, alerts = Correlator(cfg), []
    for i, (sre, _) in enumerate(script(30, [CHECKOUT_SLOW])):
        for m in sre:
            corr.on_window(m)
        alerts += corr.on_lens_complete("sre", ws(i) + W)
    assert firing_at(alerts, 15) == {("sre_dip_no_user_impact", "checkout")}
    assert alerts[0]["impact"]["reasons"] == ["no_dependent_cohorts"]
    assert corr.on_window(cx_window("web", 3)) == [] and corr.late_windows == 1


# ---- lifecycle ------------------------------------------------------------------------------
def test_fire_upgrade_and_resolve_under_one_id():
    changes = [("cx", "web", range(15, 21), {"frustration": 0.25}),
               ("sre", "checkout", [17], {"p95": 800.0})]
    alerts = by_subject(run(script(30, changes))[0], "web")
    assert [(k, s, i, q) for k, _, s, i, q in brief(alerts)] == [
        ("cx_dip_unexplained", "firing", 15, 0),
        ("cx_dip_explained", "firing", 16, 1),  # checkout at 17 is adjacent to 16
        ("cx_dip_explained", "resolved", 22, 2),  # never downgraded; 21 and 22 healthy
    ]
    assert len({a["alert_id"] for a in alerts}) == 1
    assert alerts[-1]["candidates"][0]["service"] == "checkout"
    assert alerts[-1]["incident_start"] == ws(15)


def test_active_alerts_follow_the_lifecycle():
    windows = script(25, [WEB_FRUSTRATED])
    _, corr = run(windows[:17])
    assert corr.active_alerts() == [(alert_id("cx", "web", ws(15)), "cx_dip_unexplained",
                                     "cx", "web")]
    run(windows, corr=corr, start=17)
    assert corr.active_alerts() == []


def test_long_incident_re_emits_fresh_evidence_every_few_windows():
    alerts = run(script(40, [("cx", "web", range(15, 31), {"frustration": 0.25})]))[0]
    assert [(s, i, q) for _, _, s, i, q in brief(alerts)] == [
        ("firing", 15, 0), ("firing", 20, 1), ("firing", 25, 2), ("firing", 30, 3),
        ("resolved", 32, 4)]
    fresh = [a["evidence"][0]["window_start"] for a in alerts[:4]]
    assert fresh == [ws(i) for i in (15, 20, 25, 30)]


def test_a_subject_that_goes_silent_resolves():
    changes = [("cx", "web", range(15, 17), {"frustration": 0.25}),
               ("cx", "web", range(17, 30), GAP)]
    alerts = run(script(30, changes))[0]
    assert [(s, i) for _, _, s, i, _ in brief(alerts)] == [("firing", 15), ("resolved", 18)]
    assert alerts[-1]["evidence"] == [e for e in alerts[-1]["evidence"] if e["lens"] == "sre"]


def test_a_new_dip_after_resolve_is_a_new_incident():
    changes = [("cx", "web", range(15, 17), {"frustration": 0.25}),
               ("cx", "web", range(25, 27), {"frustration": 0.25})]
    alerts = run(script(35, changes))[0]
    assert [(s, i) for _, _, s, i, _ in brief(alerts)] == [
        ("firing", 15), ("resolved", 18), ("firing", 25), ("resolved", 28)]
    assert alerts[0]["alert_id"] == alerts[1]["alert_id"] != alerts[2]["alert_id"]


# ---- restart ------------------------------------------------------------------------------
@pytest.mark.parametrize("stop", [15, 16, 17, 19])
def test_restart_mid_incident_continues_under_the_same_ids(stop):
    windows = script(30, MIXED[:2] + [("cx", "web", range(18, 20), {"frustration": 0.25})])
    reference = run(windows)[0]
    before, corr = run(windows[:stop])
    state = corr.to_state()
    blob = dumps(state)
    restored = Correlator.from_state(orjson.loads(blob))
    assert dumps(restored.to_state()) == blob  # byte-stable round trip
    assert restored.active_alerts() == corr.active_alerts()
    after = run(windows, corr=restored, start=stop)[0]
    assert dumps(before + after) == dumps(reference)


def test_state_stays_bounded():
    windows = script(200, MIXED)
    _, corr = run(windows)
    state = corr.to_state()
    for lens in ("sre", "cx"):
        assert len(state["records"][lens]) <= 31
        assert len(state["detections"][lens]) <= 2
    assert len(dumps(state)) < 60_000


# ---- input contract -----------------------------------------------------------------------
def test_late_and_malformed_windows():
    _, corr = run(script(12))
    assert corr.on_window(sre_window("checkout", 3)) == [] and corr.late_windows == 1
    bad = sre_window("checkout", 20)
    with pytest.raises(ValueError):
        corr.on_window({**bad, "window_start": bad["window_start"] + 1})
    with pytest.raises(ValueError):
        corr.on_window({**bad, "lens": "apm"})
    with pytest.raises(ValueError):
        corr.on_lens_complete("apm", ws(30))


# ---- correlation gauge ----------------------------------------------------------------------
def test_correlations_of_linked_pairs():
    windows = script(40)
    _, corr = run(windows)
    got = {(s, c, sm, cm): r for s, c, sm, cm, r in corr.correlations()}
    assert {(s, c) for s, c, _, _ in got} == {("checkout", "web"), ("search", "web"),
                                              ("search", "mobile")}
    # Scripted series move with the same noise: latency and TTI correlate perfectly,
    # up to rounding of counts; verify one value against a direct computation.
    xs = [m["latency_ms"]["p95"] for sre, _ in windows[-30:]
          for m in sre if m["subject"] == "search"]
    ys = [m["tti_ms"]["p75"] for _, cx in windows[-30:] for m in cx if m["subject"] == "mobile"]
    r = got[("search", "mobile", "latency_p95_ms", "tti_p75_ms")]
    assert r == pytest.approx(pearson(xs, ys), abs=1e-6)
    assert Correlator().correlations() == []


# ---- schema -------------------------------------------------------------------------------
def all_kinds_alerts():
    services = {**SERVICES, "batch": 1000}
    changes = MIXED + [("sre", "batch", range(60, 62), {"p95": 900.0})]
    return run(script(70, changes, services))[0]


def test_produced_alerts_validate_against_the_schema():
    validator = Draft202012Validator(SCHEMA)
    alerts = all_kinds_alerts()
    assert {a["kind"] for a in alerts} == {"cx_dip_explained", "cx_dip_unexplained",
                                           "sre_dip_user_impacting", "sre_dip_no_user_impact"}
    assert {a["status"] for a in alerts} == {"firing", "resolved"}
    for alert in alerts:
        validator.validate(alert)
        assert set(alert) == set(SCHEMA["properties"])  # the schema documents every field


def test_schema_examples_are_valid():
    Draft202012Validator.check_schema(SCHEMA)
    paths = sorted((ROOT / "schemas" / "examples"
                    / "alert" / "valid").glob("*.json"))
    assert len(paths) >= 5
    for path in paths:
        Draft202012Validator(SCHEMA).validate(json.loads(path.read_text()))


# ---- no false alarms on noisy, stable traffic ---------------------------------------------
def noisy_day(n, seed=7, slow=(), frustrated=()):
    """Seeded sampling noise (binomial counts, lognormal latencies and TTI) over a traffic
    curve from peak down to 8 % off-peak and back. `slow`: (service, windows) with 3x
    latency; `frustrated`: (cohort, windows) with 4x the frustrated sessions."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        level = 0.08 + 0.92 * (0.5 + 0.5 * math.cos(2 * math.pi * i / n))
        sre = [_noisy_sre(rng, s, i, round(base * level),
                          3.0 if any(s == x and i in r for x, r in slow) else 1.0)
               for s, base in (("checkout", 3000), ("search", 6000), ("payments", 1500))]
        cx = [_noisy_cx(rng, c, i, round(base * level), links,
                        4.0 if any(c == x and i in r for x, r in frustrated) else 1.0)
              for c, base, links in (("web", 800, {"checkout": 0.6, "search": 0.8}),
                                     ("mobile", 500, {"search": 0.9, "payments": 0.2}))]
        out.append(([m for m in sre if m], [m for m in cx if m]))
    return out


def _noisy_sre(rng, service, i, requests, slower):
    if requests == 0:
        return None
    latency = rng.lognormal(math.log(120 * slower), 0.8, requests)
    errors = int(rng.binomial(requests, 0.01))
    slices = [int(v) for v in rng.multinomial(requests, [1 / 6] * 6)]
    bad = [int(rng.binomial(n, 0.01)) for n in slices]
    up = sum(1 for n, e in zip(slices, bad, strict=True) if n and e / n <= 0.05)
    with_traffic = sum(1 for n in slices if n)
    p50, p95, p99 = np.quantile(latency, [0.5, 0.95, 0.99])
    return {"lens": "sre", "subject": service, "window_start": ws(i), "window_end": ws(i) + W,
            "requests": requests, "errors": errors, "error_ratio": errors / requests,
            "availability": up / with_traffic, "slices_up": up,
            "slices_with_traffic": with_traffic,
            "latency_ms": {"p50": float(p50), "p95": float(p95), "p99": float(p99)}}


def _noisy_cx(rng, cohort, i, sessions, links, worse):
    if sessions == 0:
        return None
    views = int(rng.poisson(3 * sessions)) or 1
    frustrated = int(rng.binomial(sessions, 0.06 * worse))
    abandons = int(rng.binomial(views, 0.05))
    tti = rng.lognormal(math.log(1800), 0.6, views)
    return {"lens": "cx", "subject": cohort, "window_start": ws(i), "window_end": ws(i) + W,
            "sessions": sessions, "page_views": views, "frustrated_sessions": frustrated,
            "frustration_events": {"rage_click": frustrated}, "abandons": abandons,
            "completes": views - abandons, "frustration_ratio": frustrated / sessions,
            "abandonment_ratio": abandons / views,
            "tti_ms": {"p50": float(np.quantile(tti, 0.5)), "p75": float(np.quantile(tti, 0.75)),
                       "p95": float(np.quantile(tti, 0.95))},
            "web_vitals": {},
            "services": {s: int(rng.binomial(views, p)) for s, p in links.items()}}


@pytest.mark.parametrize("seed", [7, 8])
def test_noisy_but_stable_traffic_raises_nothing(seed):
    alerts, _ = run(noisy_day(360, seed))
    assert brief(alerts) == []


def test_noisy_traffic_with_incidents_finds_exactly_them():
    peak, night = range(20, 23), range(178, 181)  # 100 % and 8 % of peak traffic
    windows = noisy_day(360, 9, slow=[("checkout", peak), ("search", night)],
                        frustrated=[("web", peak), ("mobile", range(100, 103))])
    alerts = run(windows)[0]
    firing = {(k, s, i) for k, s, st, i, q in brief(alerts) if st == "firing"}
    assert firing == {("sre_dip_user_impacting", "checkout", 20), ("cx_dip_explained", "web", 20),
                      ("cx_dip_unexplained", "mobile", 100),
                      ("sre_dip_no_user_impact", "search", 178)}
    search = by_subject(alerts, "search")[0]
    assert search["impact"]["reasons"][0] == "off_peak"
    assert [c["service"] for c in by_subject(alerts, "web")[0]["candidates"]][0] == "checkout"
