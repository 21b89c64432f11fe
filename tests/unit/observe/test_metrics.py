"""The metrics bundle on a fresh registry: base units, bounded labels, merged views -> gauges."""
import hashlib

from prometheus_client import CollectorRegistry

from app.core.ingest.events import RequestEvent, RumEvent
from app.core.lenses.cx import CxAccumulator, merge_cx_partials, rolling_cx
from app.core.lenses.sre import SreAccumulator, merge_sre_partials
from app.core.windows.partition import LensSpec, PartitionState
from app.core.windows.windows import PartitionWatermark, WindowSpec
from app.observe.labels import OVERFLOW_LABEL, LabelLimiter, label_value
from app.observe.metrics import Metrics


def sample(metrics: Metrics, metric: str, **labels) -> float | None:
    return metrics.registry.get_sample_value(metric, labels)


def test_sre_window_gauges_are_in_seconds_and_ratios():
    m = Metrics(CollectorRegistry())
    acc = SreAccumulator(0, 10, 200)
    acc.fold([RequestEvent(1.0, "api", 100.0, 200), RequestEvent(2.0, "api", 300.0, 503)])
    merged = merge_sre_partials([acc.to_partial("api", 0, 60)])
    m.observe_sre_window(merged, (0.5, 0.99))
    assert sample(m, "lensbridge_sre_requests", service="api") == 2
    assert sample(m, "lensbridge_sre_error_ratio", service="api") == 0.5
    assert 0.1 <= sample(m, "lensbridge_sre_latency_seconds", service="api", quantile="0.5") <= 0.3
    assert sample(m, "lensbridge_sre_availability_ratio", service="api") == 0.0


def test_cx_window_and_rolling_gauges():
    m = Metrics(CollectorRegistry())
    windows = []
    for w in range(3):
        acc = CxAccumulator(w * 60)
        acc.fold([RumEvent(w * 60 + 1.0, f"s{w}", "page_view", "web", view_id="v"),
                  RumEvent(w * 60 + 2.0, f"s{w}", "interactive", "web", view_id="v", tti_ms=1200.0),
                  RumEvent(w * 60 + 3.0, f"s{w}", "web_vital", "web", name="LCP", value=2500.0),
                  RumEvent(w * 60 + 4.0, f"s{w}", "web_vital", "web", name="CLS", value=0.2)]
                 + ([RumEvent(w * 60 + 5.0, f"s{w}", "rage_click", "web")] if w == 0 else []))
        windows.append(merge_cx_partials([acc.to_partial("web", 0, 60)]))
    m.observe_cx_window(windows[0], (0.75,))
    assert sample(m, "lensbridge_cx_frustration_ratio", cohort="web") == 1.0
    assert sample(m, "lensbridge_cx_tti_seconds", cohort="web", quantile="0.75") == 1.2
    assert sample(m, "lensbridge_cx_web_vital", cohort="web", name="LCP") == 2.5
    assert sample(m, "lensbridge_cx_web_vital", cohort="web", name="CLS") == 0.2  # unitless
    m.observe_cx_rolling(rolling_cx(windows), (0.5,))
    assert abs(sample(m, "lensbridge_cx_rolling_frustration_ratio", cohort="web") - 1 / 3) < 1e-9


def test_label_values_are_capped():
    limit = LabelLimiter(2)
    assert [limit(v) for v in ("a", "b", "c", "a")] == ["a", "b", OVERFLOW_LABEL, "a"]


def test_correlator_view_replaces_incident_gauges():
    m = Metrics(CollectorRegistry())
    m.observe_correlator([("id1", "cx_dip_unexplained", "cx", "web")], [("api", "web", "error_ratio",
                                                                          "frustration_ratio", 0.8)], 0)
    assert sample(m, "lensbridge_alert_active", kind="cx_dip_unexplained", subject="web") == 1
    m.observe_correlator([], [], 0)
    assert sample(m, "lensbridge_alert_active", kind="cx_dip_unexplained", subject="web") is None
    assert sample(m, "lensbridge_lens_correlation", service="api", cohort="web", sre_metric="error_ratio",
                  cx_metric="frustration_ratio") is None


class Clock:
    def __init__(self, now_s=1_700_000_000.0):
        self.now_s = now_s

    def __call__(self):
        return self.now_s


def sre_window(subject, requests=1):
    acc = SreAccumulator(0, 10, 200)
    acc.fold([RequestEvent(1.0, subject, 100.0, 200)] * requests)
    return merge_sre_partials([acc.to_partial(subject, 0, 60)])


def cx_window(subject):
    acc = CxAccumulator(0)
    acc.fold([RumEvent(1.0, "s1", "page_view", subject, view_id="v")])
    return merge_cx_partials([acc.to_partial(subject, 0, 60)])


def series(m, metric, label):
    return {s.labels[label] for f in m.registry.collect() if f.name == metric for s in f.samples}


def test_a_real_service_is_exported_once_600_junk_names_expired():
    clock = Clock()
    m = Metrics(CollectorRegistry(), max_label_values=500, label_idle_s=1800.0, clock=clock)
    for i in range(600):
        m.observe_sre_window(sre_window(f"junk-{i}"), (0.5,))
    m.observe_sre_window(sre_window("api", 3), (0.5,))
    assert sample(m, "lensbridge_sre_requests", service="api") is None  # cap full: `_other`
    assert sample(m, "lensbridge_sre_requests", service=OVERFLOW_LABEL) == 3
    clock.now_s += 1800.0  # the junk went quiet half an hour ago
    m.observe_sre_window(sre_window("api", 4), (0.5,))
    assert sample(m, "lensbridge_sre_requests", service="api") == 4
    assert sample(m, "lensbridge_sre_latency_seconds_count", service="api") == 4
    names = series(m, "lensbridge_sre_requests", "service") | series(m, "lensbridge_sre_latency_seconds",
                                                                     "service")
    assert names == {"api", OVERFLOW_LABEL}, "the expired junk's series are gone from /metrics"


def test_label_caps_are_per_kind():
    m = Metrics(CollectorRegistry(), max_label_values=3, clock=Clock())
    for i in range(10):
        m.observe_cx_window(cx_window(f"junk-cohort-{i}"), (0.75,))
    m.observe_sre_window(sre_window("api"), (0.5,))
    assert sample(m, "lensbridge_sre_requests", service="api") == 1
    assert series(m, "lensbridge_cx_sessions", "cohort") == {"junk-cohort-0", "junk-cohort-1", "junk-cohort-2",
                                                             OVERFLOW_LABEL}


def test_idle_cohort_series_are_removed_with_every_label_combination():
    clock = Clock()
    m = Metrics(CollectorRegistry(), label_idle_s=60.0, clock=clock)
    m.observe_cx_window(cx_window("web"), (0.75,))
    m.cx_web_vital.labels("web", "LCP").set(2.5)
    clock.now_s += 30
    m.observe_cx_window(cx_window("ios"), (0.75,))  # touched later: stays
    clock.now_s += 40
    m.observe_cx_window(cx_window("ios"), (0.75,))
    assert series(m, "lensbridge_cx_sessions", "cohort") == {"ios"}
    assert series(m, "lensbridge_cx_web_vital", "cohort") == set()


def test_long_values_are_shortened_with_a_stable_hash():
    long_a, long_b = "a" * 100 + "x", "a" * 100 + "y"
    first = label_value(long_a)
    assert first == "a" * 64 + "~" + hashlib.sha256(long_a.encode()).hexdigest()[:8]
    assert first == label_value(long_a) and first != label_value(long_b)
    assert label_value("b" * 64) == "b" * 64  # 64 characters or fewer: unchanged
    m = Metrics(CollectorRegistry(), clock=Clock())
    m.observe_sre_window(sre_window(long_a), (0.5,))
    assert sample(m, "lensbridge_sre_requests", service=first) == 1


def test_a_subject_really_named_like_the_overflow_is_not_the_overflow():
    state = PartitionState(COUNT_LENS, SPEC, 0, 2, PartitionWatermark(SPEC))  # 2 subjects
    state.fold([(0, [(1000.0, "api")]), (1, [(1001.0, "_other")]), (2, [(1002.0, "overflowing")])], 1e9)
    state.advance_to(2000.0)
    subjects = [p["subject"] for _, p in state.closed_partials()]
    assert sorted(subjects) == ["__other", "_other", "api"]  # real "_other" escaped; the overflow bucket
    limiter = LabelLimiter(1)
    assert limiter("__other") == "__other" != OVERFLOW_LABEL
    assert limiter("another") == OVERFLOW_LABEL and limiter("_other") == OVERFLOW_LABEL


class _Count:
    def __init__(self, start_s):
        self.start_s, self.n = start_s, 0

    def to_state(self):
        return {"n": self.n}

    def to_partial(self, subject, partition, window_s):
        return {"subject": subject, "n": self.n}


def _fold(acc, events):
    acc.n += len(events)


COUNT_LENS = LensSpec("t", lambda e: e[1], _Count, lambda s: _Count(0), _fold)
SPEC = WindowSpec(window_s=60, grace_s=10, idle_s=15, max_open_windows=8)
