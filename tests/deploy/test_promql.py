"""Tests of the PromQL helpers (tests/deploy/promql.py) that the dashboard and rules tests use.

Queries are parsed with a real PromQL parser (promql-parser, the Rust parser's Python binding), not
regular expressions, so functions, keywords and label names are never mistaken for metrics."""
from __future__ import annotations

from tests.deploy.promql import exported_metrics, grouping_labels, metric_names, substitute, variable_expr


def test_metric_names_come_from_selectors_only():
    expr = ('histogram_quantile(0.9, sum by (le, service) (rate(a_bucket{service=~"$service"}[$__rate_interval])))'
            ' / on (service) group_left () max by (service) (b_total offset 5m)'
            ' or label_replace(-(c), "x", "$1", "y", "(.*)") and max_over_time(d[10m:1m]) > 0'
            ' unless {__name__="e", job="j"}')
    assert metric_names(substitute(expr)) == {"a_bucket", "b_total", "c", "d", "e"}
    assert grouping_labels(substitute(expr)) == {"le", "service"}


def test_substitute_replaces_grafana_variables():
    assert substitute('x{a=~"$service", b=~"${cohort:regex}"}[$__rate_interval]') == 'x{a=~".*", b=~".*"}[1m]'


def test_variable_queries_yield_their_selector():
    assert variable_expr('label_values(lensbridge_sre_requests{job=~"$job"}, service)') == \
        'lensbridge_sre_requests{job=~"$job"}'
    assert variable_expr("label_values(job)") is None
    assert variable_expr("query_result(topk(5, x))") == "topk(5, x)"


def test_exported_metrics_cover_both_lenses_with_label_names():
    exported = exported_metrics()
    assert exported["lensbridge_sre_latency_seconds"] >= {"service"}
    assert exported["lensbridge_cx_frustration_ratio"] == {"cohort"}
    assert "lensbridge_events_total" in exported and "lensbridge_events" not in exported
    assert exported["lensbridge_ready"] == set()
