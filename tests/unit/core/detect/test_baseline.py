"""Rolling baselines and the per-lens learning loop (what the baseline learns, and when not)."""
import numpy as np
import orjson
import pytest

from app.core.detect import stats
from app.core.detect.baseline import Baselines, LensDetector
from app.core.detect.dips import DetectionConfig, window_record

W = 60
VALUES = [200.0, 206.0, 196.0, 202.0, 194.0, 204.0, 198.0, 208.0, 192.0, 200.0]


def sre(i, requests=2000, p95=None):
    p95 = VALUES[i % len(VALUES)] if p95 is None else p95
    return window_record({"lens": "sre", "subject": "api", "window_start": i * W,
                          "window_end": i * W + W, "requests": requests, "errors": 0,
                          "error_ratio": 0.0, "availability": 1.0, "slices_up": 6,
                          "slices_with_traffic": 6,
                          "latency_ms": {"p50": 100.0, "p95": p95, "p99": 2 * p95}})


def feed(detector, windows):
    """windows: {i: record or None}; returns {i: entry} for subject api."""
    out = {}
    for i, record in windows.items():
        entries = detector.detect(i * W, {} if record is None else {"api": record})
        if "api" in entries:
            out[i] = entries["api"]
    return out


# ---- statistics ---------------------------------------------------------------------------
def test_robust_statistics_match_numpy():
    values = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0]
    assert stats.median(values) == np.median(values)
    assert stats.mad(values, stats.median(values)) == np.median(np.abs(np.array(values) - 3.5))
    for q in (0.0, 0.1, 0.5, 0.9, 1.0):
        assert stats.quantile(values, q) == pytest.approx(np.quantile(values, q))
    with pytest.raises(ValueError):
        stats.median([])


# ---- the store ----------------------------------------------------------------------------
def test_baseline_rolls_over_the_last_windows_and_ignores_outliers():
    b = Baselines(baseline_windows=5, traffic_windows=10)
    for i, v in enumerate([100.0, 1.0, 2.0, 3.0, 4.0, 1000.0]):
        b.add_value("api", "latency_p95_ms", i * W, v)
    got = b.baseline("api", "latency_p95_ms")
    assert (got.median, got.windows) == (3.0, 5)  # 100 rolled out; 1000 cannot drag a median
    b.add_value("api", "latency_p95_ms", 2 * W, 9999.0)  # a window folded twice counts once
    assert b.baseline("api", "latency_p95_ms").median == 3.0
    assert b.baseline("api", "error_ratio") is None and b.baseline("web", "x") is None


def test_traffic_knows_peak_from_a_long_horizon():
    b = Baselines(baseline_windows=3, traffic_windows=10)
    for i, n in enumerate([1000, 1100, 900, 1000, 1050, 100, 90, 110]):
        b.add_traffic("api", i * W, n)
    t = b.traffic("api")
    assert t.median == 100  # the last 3 windows: the night
    assert t.peak == pytest.approx(np.quantile([1000, 1100, 900, 1000, 1050, 100, 90, 110], 0.9))


def test_departed_subjects_are_forgotten_and_state_round_trips():
    b = Baselines(baseline_windows=3, traffic_windows=10)
    b.add_value("old", "m", 0, 1.0)
    b.add_traffic("new", 10 * W, 5)
    b.add_value("new", "m", 10 * W, 2.0)
    state = orjson.loads(orjson.dumps(b.to_state()))
    again = Baselines.from_state(state, 3, 10)
    assert again.to_state() == b.to_state()
    b.forget_before(5 * W)
    assert b.subjects() == ["new"]


# ---- the learning loop ----------------------------------------------------------------------
def test_no_judgement_until_min_baseline_windows():
    det = LensDetector("sre", DetectionConfig())
    entries = feed(det, {i: sre(i) for i in range(10)})
    assert all(e["checks"] == {} for e in entries.values())
    assert set(feed(det, {10: sre(10)})[10]["checks"]) == {"latency_p95_ms", "latency_p99_ms",
                                                            "error_ratio", "availability"}


def test_incident_windows_do_not_teach_the_baseline():
    det = LensDetector("sre", DetectionConfig())
    feed(det, {i: sre(i) for i in range(30)})
    entries = feed(det, {i: sre(i, p95=900.0) for i in range(30, 45)})
    assert [e["event"] for e in entries.values()] == ["open"] + ["dip"] * 14
    assert det.baselines.baseline("api", "latency_p95_ms").median == pytest.approx(200.0, abs=3)
    after = feed(det, {45: sre(45), 46: sre(46)})
    assert [after[45]["event"], after[46]["event"]] == ["healthy", "close"]
    assert after[45]["start"] == after[46]["start"] == 30 * W


def test_a_lasting_shift_is_learnt_after_relearn_after_windows():
    det = LensDetector("sre", DetectionConfig(relearn_after_windows=10))
    feed(det, {i: sre(i) for i in range(30)})
    entries = feed(det, {i: sre(i, p95=900.0) for i in range(30, 80)})
    events = [e["event"] for e in entries.values()]
    assert events[0] == "open" and "close" in events  # the new level became normal
    assert det.baselines.baseline("api", "latency_p95_ms").median == 900.0


def test_low_volume_windows_stay_out_of_the_baseline_but_count_as_traffic():
    det = LensDetector("sre", DetectionConfig())
    feed(det, {i: sre(i) for i in range(12)})
    feed(det, {12: sre(12, requests=10, p95=5000.0)})
    assert det.baselines.baseline("api", "latency_p95_ms").windows == 12
    assert det.baselines.traffic("api").windows == 13


def test_gaps_step_an_open_episode_to_its_close():
    det = LensDetector("sre", DetectionConfig())
    feed(det, {i: sre(i) for i in range(12)})
    entries = feed(det, {12: sre(12, p95=900.0), 13: None, 14: None, 15: None})
    assert {i: e["event"] for i, e in entries.items()} == {12: "open", 13: "healthy", 14: "close"}
    assert entries[13]["checks"] == {} and entries[13]["traffic"] is None


def test_traffic_entry_is_taken_before_the_window_is_learnt():
    det = LensDetector("sre", DetectionConfig())
    feed(det, {i: sre(i, requests=1000) for i in range(5)})
    entry = feed(det, {5: sre(5, requests=100)})[5]
    assert entry["traffic"] == {"volume": 100, "median": 1000, "peak": 1000}


def test_ignored_subjects_are_not_judged():
    det = LensDetector("sre", DetectionConfig())
    assert det.detect(0, {"_other": sre(0)}) == {}
