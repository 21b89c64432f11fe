"""Prometheus metrics as one bundle on an injected registry.

Tests build `Metrics(CollectorRegistry())`; the worker builds one on its own
registry and serves it from its own thread and port (`serve`), so `/metrics`,
`/healthz` and `/readyz` answer while Faust is still recovering tables.
Label values for services and cohorts are bounded (`LabelLimiter`): a stream
with unbounded subjects must not become an unbounded number of series.
"""
from __future__ import annotations

import socket
import threading
import time
from http.server import ThreadingHTTPServer
from typing import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge

from app.core.health import Health
from app.core.lenses.digest import quantile_key
from app.observe.http import handler
from app.observe.labels import LabelLimiter
from app.observe.quantile import WindowSummary


class Metrics:
    def __init__(self, registry: CollectorRegistry, max_label_values: int = 500,
                 label_idle_s: float = 1800.0, clock: Callable[[], float] = time.time):
        self.registry = registry
        self.clock = clock
        # Capped per kind, so a flood of junk cohorts cannot push real services into `_other`.
        self.service_label = LabelLimiter(max_label_values, label_idle_s)
        self.cohort_label = LabelLimiter(max_label_values, label_idle_s)
        r = registry
        self.events = Counter("lensbridge_events", "Events folded into windows", ["lens"], registry=r)
        self.invalid = Counter("lensbridge_invalid_events", "Input elements sent to the dead-letter topic",
                               ["topic", "reason"], registry=r)
        self.late = Counter("lensbridge_late_events", "Events for windows already closed (dead-lettered)",
                            ["lens"], registry=r)
        self.replay_skipped = Counter("lensbridge_replayed_events_skipped",
                                      "Events seen again after a restart and skipped (already counted)",
                                      ["lens"], registry=r)
        self.overflow = Counter("lensbridge_subject_overflow_events",
                                "Events folded into the _other subject because of the subject cap",
                                ["lens"], registry=r)
        self.windows_closed = Counter("lensbridge_windows_closed", "Partition windows closed and emitted",
                                      ["lens"], registry=r)
        self.windows_forced = Counter("lensbridge_windows_forced_closed",
                                      "Windows closed early by the open-window cap", ["lens"], registry=r)
        self.watermark_lag = Gauge("lensbridge_watermark_lag_seconds",
                                   "Wall clock minus the lowest partition watermark of this worker",
                                   ["lens"], registry=r)
        self.open_slots = Gauge("lensbridge_open_window_subjects", "Open (window, subject) accumulators",
                                ["lens"], registry=r)
        self.records_refused = Counter("lensbridge_records_refused",
                                       "Records the worker wrote that their topic refused for their size "
                                       "(each became a record_too_large dead letter)", ["topic", "reason"],
                                       registry=r)
        self.ready = Gauge("lensbridge_ready", "1 once table recovery finished and agents run", registry=r)
        self.joiner_active = Gauge("lensbridge_joiner_active",
                                   "1 while this worker owns the summaries partition (runs the joiner)", registry=r)
        self.assigned = Gauge("lensbridge_assigned_partitions", "Input partitions this worker owns",
                              ["topic"], registry=r)
        self.stalled = Gauge("lensbridge_stalled", "1 while input waits and nothing became durable for "
                             "LENSBRIDGE_STALL_SECONDS (e.g. Kafka unreachable)", registry=r)
        self.progress_age = Gauge("lensbridge_progress_age_seconds", "How long waiting input has gone "
                                  "without anything becoming durable (0 when nothing waits)", registry=r)
        self._sre_gauges(r)
        self._cx_gauges(r)
        self._alert_metrics(r)
        self._slo_metrics(r)

    def _sre_gauges(self, r: CollectorRegistry) -> None:
        self.sre_latency = WindowSummary("lensbridge_sre_latency_seconds", "Request latency, last closed window",
                                         "service", r)
        self.sre_error_ratio = Gauge("lensbridge_sre_error_ratio", "Error ratio, last closed window",
                                     ["service"], registry=r)
        self.sre_availability = Gauge("lensbridge_sre_availability_ratio",
                                      "Share of availability slices that were up, last closed window",
                                      ["service"], registry=r)
        self.sre_requests = Gauge("lensbridge_sre_requests", "Requests in the last closed window",
                                  ["service"], registry=r)

    def _cx_gauges(self, r: CollectorRegistry) -> None:
        self.cx_frustration = Gauge("lensbridge_cx_frustration_ratio",
                                    "Frustrated sessions / sessions, last closed window", ["cohort"], registry=r)
        self.cx_abandonment = Gauge("lensbridge_cx_abandonment_ratio",
                                    "Abandoned page views / page views, last closed window", ["cohort"], registry=r)
        self.cx_sessions = Gauge("lensbridge_cx_sessions", "Distinct sessions, last closed window",
                                 ["cohort"], registry=r)
        self.cx_tti = WindowSummary("lensbridge_cx_tti_seconds", "Time-to-interactive, last closed window",
                                    "cohort", r)
        self.cx_web_vital = Gauge("lensbridge_cx_web_vital",
                                  "Web vital at p75 (seconds; CLS unitless), last closed window",
                                  ["cohort", "name"], registry=r)
        self.cx_frustration_events = Gauge("lensbridge_cx_frustration_events",
                                           "Frustration events by type, last closed window",
                                           ["cohort", "type"], registry=r)
        self.cx_rolling_frustration = Gauge("lensbridge_cx_rolling_frustration_ratio",
                                            "Frustrated session-windows / session-windows over the rolling view",
                                            ["cohort"], registry=r)
        self.cx_rolling_abandonment = Gauge("lensbridge_cx_rolling_abandonment_ratio",
                                            "Abandoned page views / page views over the rolling view",
                                            ["cohort"], registry=r)
        self.cx_rolling_tti = WindowSummary("lensbridge_cx_rolling_tti_seconds",
                                            "Time-to-interactive over the rolling view", "cohort", r)

    def _alert_metrics(self, r: CollectorRegistry) -> None:
        self.alerts = Counter("lensbridge_alerts", "Correlation alert messages sent", ["kind", "status"],
                              registry=r)
        self.alert_active = Gauge("lensbridge_alert_active", "1 while an incident is firing",
                                  ["kind", "subject"], registry=r)
        self.lens_correlation = Gauge("lensbridge_lens_correlation",
                                      "Pearson r of a linked service's SRE series and a cohort's CX series "
                                      "over the baseline windows", ["service", "cohort", "sre_metric", "cx_metric"],
                                      registry=r)
        self.late_windows = Gauge("lensbridge_correlator_late_windows",
                                  "Merged windows that arrived after their lens was complete", registry=r)

    def _slo_metrics(self, r: CollectorRegistry) -> None:
        self.slo_burn_rate = Gauge("lensbridge_slo_burn_rate", "Error-budget burn rate over a window",
                                   ["service", "slo", "window"], registry=r)
        self.slo_budget_remaining = Gauge("lensbridge_slo_error_budget_remaining_ratio",
                                          "Share of the period's error budget left", ["service", "slo"], registry=r)
        self.slo_objective = Gauge("lensbridge_slo_objective_ratio", "The SLO's objective, e.g. 0.999",
                                   ["service", "slo"], registry=r)

    # -- bounded labels ---------------------------------------------------------------------
    def service(self, value: str) -> str:
        """The `service` label for a subject; series of services idle too long are removed first."""
        now_s = self.clock()
        for gone in self.service_label.expire(now_s):
            self._forget("service", gone, self.sre_latency, self.sre_error_ratio, self.sre_availability,
                         self.sre_requests)
        return self.service_label(value, now_s)

    def cohort(self, value: str) -> str:
        """The `cohort` label for a subject (capped and expired apart from services)."""
        now_s = self.clock()
        for gone in self.cohort_label.expire(now_s):
            self._forget("cohort", gone, self.cx_frustration, self.cx_abandonment, self.cx_sessions, self.cx_tti,
                         self.cx_web_vital, self.cx_frustration_events, self.cx_rolling_frustration,
                         self.cx_rolling_abandonment, self.cx_rolling_tti)
        return self.cohort_label(value, now_s)

    @staticmethod
    def _forget(label: str, value: str, *metrics) -> None:
        """Remove every series whose `label` is `value`, so /metrics does not grow forever."""
        for metric in metrics:
            if isinstance(metric, WindowSummary):
                metric.remove(value)
                continue
            series = {tuple(sample.labels.values()) for family in metric.collect() for sample in family.samples
                      if sample.labels.get(label) == value}
            for labels in series:
                metric.remove(*labels)

    def observe_slo(self, gauges) -> None:
        """Replace the SLO series with the engine's view (unknown values are left out)."""
        for gauge in (self.slo_burn_rate, self.slo_budget_remaining, self.slo_objective):
            gauge.clear()
        for service, slo, window, value in gauges.burn_rate:
            self.slo_burn_rate.labels(service, slo, window).set(value)
        for service, slo, value in gauges.error_budget_remaining_ratio:
            self.slo_budget_remaining.labels(service, slo).set(value)
        for service, slo, value in gauges.objective_ratio:
            self.slo_objective.labels(service, slo).set(value)

    def clear_joiner_gauges(self) -> None:
        for gauge in (self.sre_latency, self.sre_error_ratio, self.sre_availability, self.sre_requests,
                      self.cx_frustration, self.cx_abandonment, self.cx_sessions, self.cx_tti, self.cx_web_vital,
                      self.cx_frustration_events, self.cx_rolling_frustration, self.cx_rolling_abandonment,
                      self.cx_rolling_tti, self.alert_active, self.lens_correlation, self.slo_burn_rate,
                      self.slo_budget_remaining, self.slo_objective):
            gauge.clear()

    def observe_correlator(self, active: list, correlations: list, late_windows: int,
                           max_pairs: int = 200) -> None:
        """Replace the incident and correlation gauges with the correlator's current view."""
        self.alert_active.clear()
        for _, kind, lens, subject in active:
            label = self.cohort(subject) if lens == "cx" else self.service(subject)
            self.alert_active.labels(kind, label).set(1)
        self.lens_correlation.clear()
        for service, cohort, sre_metric, cx_metric, r in correlations[:max_pairs]:
            if r is not None:
                self.lens_correlation.labels(self.service(service), self.cohort(cohort),
                                             sre_metric, cx_metric).set(r)
        self.late_windows.set(late_windows)

    # -- merged views -> gauges ---------------------------------------------------------
    def observe_sre_window(self, merged: dict, quantiles: tuple[float, ...]) -> None:
        service = self.service(merged["subject"])
        _set_summary(self.sre_latency, service, merged["latency_ms"], quantiles, merged.get("latency_ms_digest"))
        if merged.get("error_ratio") is not None:
            self.sre_error_ratio.labels(service).set(merged["error_ratio"])
        if merged.get("availability") is not None:
            self.sre_availability.labels(service).set(merged["availability"])
        self.sre_requests.labels(service).set(merged["requests"])

    def observe_cx_window(self, merged: dict, tti_quantiles: tuple[float, ...]) -> None:
        cohort = self.cohort(merged["subject"])
        if merged.get("frustration_ratio") is not None:
            self.cx_frustration.labels(cohort).set(merged["frustration_ratio"])
        if merged.get("abandonment_ratio") is not None:
            self.cx_abandonment.labels(cohort).set(merged["abandonment_ratio"])
        self.cx_sessions.labels(cohort).set(merged["sessions"])
        _set_summary(self.cx_tti, cohort, merged["tti_ms"], tti_quantiles, merged.get("tti_ms_digest"))
        for name, value in merged.get("web_vitals", {}).items():
            if value is not None:
                self.cx_web_vital.labels(cohort, name).set(value if name == "CLS" else value / 1000.0)
        for kind, count in merged.get("frustration_events", {}).items():
            self.cx_frustration_events.labels(cohort, kind).set(count)

    def observe_cx_rolling(self, rolled: dict, tti_quantiles: tuple[float, ...]) -> None:
        cohort = self.cohort(rolled["subject"])
        if rolled.get("frustration_ratio") is not None:
            self.cx_rolling_frustration.labels(cohort).set(rolled["frustration_ratio"])
        if rolled.get("abandonment_ratio") is not None:
            self.cx_rolling_abandonment.labels(cohort).set(rolled["abandonment_ratio"])
        _set_summary(self.cx_rolling_tti, cohort, rolled["tti_ms"], tti_quantiles, rolled.get("tti_ms_digest"))


def _set_summary(summary: WindowSummary, subject: str, quantiles_ms: dict, qs: tuple[float, ...],
                 digest: dict | None) -> None:
    """Quantiles (ms -> s) plus the digest's sum and count, as one summary series set."""
    values = {str(q): quantiles_ms[quantile_key(q)] / 1000.0 for q in qs
              if quantiles_ms.get(quantile_key(q)) is not None}
    if not values or not digest:
        return
    summary.set(subject, values, (digest.get("sum") or 0.0) / 1000.0, digest.get("n_values", 0))


def serve(metrics: Metrics, port: int, addr: str = "0.0.0.0",
          health: Callable[[], Health] | None = None) -> ThreadingHTTPServer:
    """Serve /metrics, /healthz and /readyz from a thread of their own, independent of Faust.

    /healthz: 200 while the worker makes progress (or has nothing to do), 503 while stalled.
    /readyz: 200 once tables are recovered and the agents run (`lensbridge_ready`), and not
    stalled. Both answer JSON saying why."""
    server_type = _IPv6Server if ":" in addr else ThreadingHTTPServer  # e.g. LENSBRIDGE_METRICS_BIND=::
    server = server_type((addr, port), handler(metrics, health))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="lensbridge-metrics", daemon=True).start()
    return server


class _IPv6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6
