"""Dip detection: records from merged windows, one metric against its baseline, Wilson."""
import math

import pytest

from app.core.detect import stats
from app.core.detect.dips import DEFAULT_RULES, DetectionConfig, check_metric, dipped, window_record
from app.core.detect.stats import Baseline

CFG = DetectionConfig()
RULES = {r.metric: r for r in DEFAULT_RULES}


def sre_record(requests=2000, errors=20, p95=200.0, p99=400.0, slices_up=6, slices=6):
    return window_record({
        "lens": "sre", "subject": "checkout", "window_start": 0, "window_end": 60,
        "requests": requests, "errors": errors,
        "error_ratio": errors / requests if requests else None,
        "availability": slices_up / slices if slices else None,
        "slices_up": slices_up, "slices_with_traffic": slices,
        "latency_ms": {"p50": 100.0, "p95": p95, "p99": p99}})


def cx_record(sessions=400, frustrated=20, views=1200, abandons=48, tti=1500.0):
    return window_record({
        "lens": "cx", "subject": "web", "window_start": 0, "window_end": 60,
        "sessions": sessions, "page_views": views, "frustrated_sessions": frustrated,
        "frustration_events": {}, "abandons": abandons, "completes": views - abandons,
        "frustration_ratio": frustrated / sessions, "abandonment_ratio": abandons / views,
        "tti_ms": {"p50": 900.0, "p75": tti, "p95": 3000.0}, "web_vitals": {},
        "services": {"checkout": 700, "search": 0}})


def base(median, mad=0.0, windows=30):
    return Baseline(median, mad, windows)


def check(metric, record, baseline):
    return check_metric(RULES[metric], record, baseline, CFG)


# ---- records ------------------------------------------------------------------------------
def test_sre_record_keeps_values_counts_and_volume():
    rec = sre_record(requests=1000, errors=50, slices_up=4)
    assert rec["values"] == {"latency_p95_ms": 200.0, "latency_p99_ms": 400.0,
                             "error_ratio": 0.05, "availability": 4 / 6}
    assert rec["counts"] == {"error_ratio": [50, 1000], "availability": [2, 6]}
    assert rec["volume"] == {"requests": 1000} and rec["services"] == {}


def test_cx_record_keeps_links_with_page_views():
    rec = cx_record()
    assert rec["values"] == {"frustration_ratio": 0.05, "abandonment_ratio": 0.04,
                             "tti_p75_ms": 1500.0}
    assert rec["counts"] == {"frustration_ratio": [20, 400], "abandonment_ratio": [48, 1200]}
    assert rec["volume"] == {"sessions": 400, "page_views": 1200}
    assert rec["services"] == {"checkout": 700}  # zero links carry nothing


def test_missing_or_non_finite_values_are_absent_not_zero():
    rec = window_record({"lens": "sre", "subject": "s", "requests": 0, "errors": 0,
                         "error_ratio": None, "availability": None,
                         "latency_ms": {"p95": None, "p99": math.nan}})
    assert rec["values"] == {}
    with pytest.raises(ValueError):
        window_record({"lens": "apm"})


# ---- thresholds ---------------------------------------------------------------------------
def test_latency_dips_when_large_in_every_sense():
    got = check("latency_p95_ms", sre_record(p95=400.0), base(200.0, 5.0))
    assert got["dip"] and got["threshold"] == 300.0  # +50 % beats +50 ms and 3 sigma
    assert got["size"] == pytest.approx(1.0 / 2.0)  # doubled: r = 1 -> 1 / (1 + 1)


def test_better_is_never_a_dip():
    got = check("latency_p95_ms", sre_record(p95=50.0), base(200.0, 5.0))
    assert not got["dip"] and got["size"] == 0.0


def test_absolute_threshold_stops_big_relative_moves_of_tiny_values():
    # 20 ms -> 45 ms is +125 % but only +25 ms: nobody notices 25 ms.
    assert not check("latency_p95_ms", sre_record(p95=45.0), base(20.0))["dip"]
    assert check("latency_p95_ms", sre_record(p95=75.0), base(20.0))["dip"]


def test_noisy_baseline_raises_the_threshold():
    quiet = check("latency_p95_ms", sre_record(p95=320.0), base(200.0, 5.0))
    noisy = check("latency_p95_ms", sre_record(p95=320.0), base(200.0, 40.0))
    assert quiet["dip"] and not noisy["dip"]
    assert noisy["threshold"] == pytest.approx(200.0 + 3 * stats.MAD_TO_SIGMA * 40.0)


def test_warm_up_and_volume_guard_mean_not_judged():
    assert check("latency_p95_ms", sre_record(p95=900.0), base(200.0, windows=9)) is None
    assert check("latency_p95_ms", sre_record(p95=900.0), None) is None
    assert check("latency_p95_ms", sre_record(requests=199, p95=900.0), base(200.0)) is None
    assert check("latency_p95_ms", sre_record(requests=200, p95=900.0), base(200.0))["dip"]
    # a p99 of 500 requests is the 5th-worst request: guarded harder
    assert check("latency_p99_ms", sre_record(requests=500, p99=2000.0), base(400.0)) is None
    assert check("latency_p99_ms", sre_record(requests=1000, p99=2000.0), base(400.0))["dip"]
    assert check("tti_p75_ms", cx_record(views=150, tti=9000.0), base(1500.0)) is None


# ---- ratios and the Wilson test -------------------------------------------------------------
def test_same_error_ratio_is_a_dip_only_with_volume_behind_it():
    normal = base(0.01, 0.002)
    assert check("error_ratio", sre_record(requests=10, errors=3), normal) is None
    few = check("error_ratio", sre_record(requests=60, errors=3), normal)
    assert few["value"] == 0.05 and few["value"] > few["threshold"] and not few["dip"]
    many = check("error_ratio", sre_record(requests=2000, errors=100), normal)
    assert many["value"] == 0.05 and many["dip"]


def test_availability_dips_when_enough_slices_are_down():
    normal = base(1.0)
    one_down = check("availability", sre_record(slices_up=5), normal)
    assert one_down["value"] < one_down["threshold"] and not one_down["dip"]  # 1 of 6: noise
    half_down = check("availability", sre_record(slices_up=3), normal)
    assert half_down["dip"]
    assert half_down["size"] == 1.0  # unavailable share from 0: as big as a change gets


def test_cx_ratios_and_tti():
    assert check("frustration_ratio", cx_record(frustrated=100), base(0.05, 0.005))["dip"]
    assert not check("frustration_ratio", cx_record(frustrated=30), base(0.05, 0.005))["dip"]
    assert check("abandonment_ratio", cx_record(abandons=240), base(0.04, 0.004))["dip"]
    assert check("tti_p75_ms", cx_record(tti=2500.0), base(1500.0, 50.0))["dip"]
    assert not check("tti_p75_ms", cx_record(tti=1700.0), base(1500.0, 50.0))["dip"]
    assert check("frustration_ratio", cx_record(sessions=29, frustrated=20, views=90),
                 base(0.05)) is None


def test_wilson_interval_matches_known_values():
    lo, hi = stats.wilson_interval(3, 60, 1.959964)
    assert (lo, hi) == (pytest.approx(0.01714, abs=1e-4), pytest.approx(0.13697, abs=1e-4))
    assert stats.wilson_interval(0, 0, 2.576) == (0.0, 1.0)
    assert stats.wilson_lower(6, 6, 2.576) == pytest.approx(0.4748, abs=1e-3)


def test_subject_helpers():
    checks = {"a": {"dip": True, "size": 0.4}, "b": {"dip": True, "size": 0.7},
              "c": {"dip": False, "size": 0.9}}
    assert dipped(checks) and not dipped({"c": {"dip": False, "size": 0.9}}) and not dipped({})
    assert stats.bounded_size(math.inf) == 1.0 and stats.bounded_size(-1.0) == 0.0


# ---- configuration --------------------------------------------------------------------------
def test_config_defaults_and_per_metric_overrides():
    assert (CFG.baseline_windows, CFG.min_baseline_windows, CFG.correlation_lag_windows,
            CFG.resolve_windows, CFG.window_s) == (30, 10, 1, 2, 60)
    relaxed = CFG.with_rule("error_ratio", min_volume=20)
    assert {r.metric: r.min_volume for r in relaxed.rules}["error_ratio"] == 20
    assert {r.metric: r.min_volume for r in CFG.rules}["error_ratio"] == 50  # frozen
    assert [r.metric for r in CFG.rules_for("cx")] == [
        "frustration_ratio", "abandonment_ratio", "tti_p75_ms"]
    with pytest.raises(KeyError):
        CFG.with_rule("apdex", min_volume=1)
    with pytest.raises(ValueError):
        DetectionConfig(min_baseline_windows=31)
    with pytest.raises(ValueError):
        DetectionConfig(correlation_lag_windows=-1)
