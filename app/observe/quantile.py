"""Quantiles computed by lensbridge, exported as Prometheus summaries.

A `quantile` label is reserved for summaries: exported on a gauge, `promtool check metrics`
rejects it. Our quantiles come from window t-digests, so each series is a summary of the
last closed window: `name{<subject>,quantile}`, `name_sum{<subject>}`, `name_count{<subject>}`.
"""
from __future__ import annotations

import threading
from typing import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector


class WindowSummary(Collector):
    """A summary family whose values are replaced per subject (the last closed window)."""

    def __init__(self, name: str, documentation: str, subject_label: str, registry: CollectorRegistry):
        self.name, self.documentation, self.subject_label = name, documentation, subject_label
        self._labelnames = (subject_label, "quantile")  # as prometheus-client's own metrics name it
        self._values: dict[str, tuple[dict[str, float], float, float]] = {}
        self._lock = threading.Lock()  # scraped from prometheus-client's thread
        registry.register(self)

    def set(self, subject: str, quantiles_s: dict[str, float], sum_s: float, count: float) -> None:
        with self._lock:
            self._values[subject] = (dict(quantiles_s), sum_s, count)

    def remove(self, subject: str) -> None:
        with self._lock:
            self._values.pop(subject, None)

    def clear(self) -> None:
        with self._lock:
            self._values.clear()

    def describe(self) -> list[Metric]:
        return [Metric(self.name, self.documentation, "summary")]

    def collect(self) -> Iterator[Metric]:
        metric = Metric(self.name, self.documentation, "summary")
        with self._lock:
            values = dict(self._values)
        for subject, (quantiles_s, sum_s, count) in sorted(values.items()):
            labels = {self.subject_label: subject}
            for q, value in quantiles_s.items():
                metric.add_sample(self.name, {**labels, "quantile": q}, value)
            metric.add_sample(f"{self.name}_sum", labels, sum_s)
            metric.add_sample(f"{self.name}_count", labels, count)
        yield metric
