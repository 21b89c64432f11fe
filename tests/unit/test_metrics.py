"""The metrics bundle on a fresh registry: base units, bounded labels, merged views -> gauges."""
from prometheus_client import CollectorRegistry

from app.core.cx import CxAccumulator, merge_cx_partials, rolling_cx
from app.core.events import RequestEvent, RumEvent
from app.core.sre import SreAccumulator, merge_sre_partials
from app.metrics import OVERFLOW_LABEL, LabelLimiter, Metrics


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
