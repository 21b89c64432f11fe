"""The joint Grafana dashboard (deploy/grafana/lensbridge.json): every query parses as PromQL and
uses only metrics and labels the worker exports (app/observe/metrics.py); both lenses side by side.

tests/integration/test_dashboard.py checks the same names against a running worker, and
tests/integration/test_prometheus.py runs every query against a real Prometheus.
"""
from __future__ import annotations

import pytest
import yaml

from tests.deploy.promql import (
    DASHBOARD,
    TARGET_LABELS,
    dashboard_panels,
    dashboard_queries,
    exported_metrics,
    grouping_labels,
    load_dashboard,
    metric_names,
    selector_name,
    selectors,
    substitute,
)
from tests.paths import ROOT


@pytest.fixture(scope="module")
def dashboard() -> dict:
    return load_dashboard()


def test_every_query_uses_only_metrics_the_worker_exports(dashboard):
    exported = exported_metrics()
    queries = dashboard_queries(dashboard)
    assert len(queries) >= 20
    missing = {}
    for query in queries:
        for name in metric_names(substitute(query.expr)):
            if name not in exported:
                missing.setdefault(name, []).append(query.where)
    assert not missing, ("dashboard queries use metrics that app/observe/metrics.py does not define "
                         f"(renamed, or not built yet): {missing}")


def test_label_matchers_and_groupings_use_labels_the_metrics_have(dashboard):
    exported = exported_metrics()
    problems = []
    for query in dashboard_queries(dashboard):
        expr = substitute(query.expr)
        known = set(TARGET_LABELS)
        for selector in selectors(expr):
            labels = exported.get(selector_name(selector), set())
            known |= labels
            for matcher in selector.matchers.matchers:
                if matcher.name not in labels | TARGET_LABELS | {"__name__"}:
                    problems.append(f"{query.where}: {selector_name(selector)} has no label {matcher.name!r}")
        problems += [f"{query.where}: by ({label}) is no label of its metrics"
                     for label in grouping_labels(expr) - known]
    assert not problems, problems


def test_both_lenses_sit_side_by_side_on_one_time_axis(dashboard):
    panels = [p for p in dashboard_panels(dashboard) if p["type"] != "row"]
    sre = [p for p in panels if p["title"].startswith("SRE:")]
    cx = [p for p in panels if p["title"].startswith("CX:")]
    assert len(sre) >= 4 and len(cx) >= 4
    for left in sre:
        pos = left["gridPos"]
        partner = [p for p in cx if p["gridPos"]["y"] == pos["y"] and p["gridPos"]["h"] == pos["h"]
                   and p["gridPos"]["x"] >= pos["x"] + pos["w"]]
        assert partner, f"SRE panel {left['title']!r} has no CX panel beside it"
    # one time range for the whole dashboard (no panel overrides it) and a shared crosshair
    assert not [p["title"] for p in panels if p.get("timeFrom") or p.get("timeShift")]
    assert dashboard["graphTooltip"] in (1, 2)
    # what the issue asks for, by metric
    used = {name for q in dashboard_queries(dashboard) for name in metric_names(substitute(q.expr))}
    assert {"lensbridge_sre_latency_seconds", "lensbridge_sre_error_ratio", "lensbridge_sre_availability_ratio",
            "lensbridge_cx_frustration_ratio", "lensbridge_cx_abandonment_ratio", "lensbridge_cx_tti_seconds",
            "lensbridge_cx_web_vital", "lensbridge_lens_correlation", "lensbridge_alert_active"} <= used


def test_service_and_cohort_variables_filter_their_lens(dashboard):
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert {"datasource", "service", "cohort"} <= set(variables)
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    for panel in dashboard_panels(dashboard):
        for target in panel.get("targets", []):
            expr = target["expr"]
            if "lensbridge_sre_" in expr:
                assert "$service" in expr, f"{panel['title']!r} ignores the service variable"
            if "lensbridge_cx_" in expr:
                assert "$cohort" in expr, f"{panel['title']!r} ignores the cohort variable"
            assert target["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]


def test_incidents_by_kind_show_as_state_timeline_and_annotations(dashboard):
    timelines = [p for p in dashboard_panels(dashboard) if p["type"] == "state-timeline"]
    assert any("lensbridge_alert_active" in t["expr"] and "kind" in t["expr"]
               for p in timelines for t in p["targets"])
    annotations = [a for a in dashboard["annotations"]["list"] if "lensbridge_alert_active" in a.get("expr", "")]
    assert annotations and annotations[0]["enable"]


def test_layout_is_a_valid_grid(dashboard):
    panels = list(dashboard_panels(dashboard))
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    cells = {}
    for panel in panels:
        pos = panel["gridPos"]
        assert 0 <= pos["x"] and pos["x"] + pos["w"] <= 24, panel["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, f"{panel['title']!r} overlaps {cells[(x, y)]!r}"
                cells[(x, y)] = panel["title"]
    assert dashboard["uid"] and dashboard["title"] and isinstance(dashboard["schemaVersion"], int)


def test_no_slo_panels_until_the_worker_exports_slo_metrics(dashboard):
    # Issue 9 adds lensbridge_slo_*; until app/observe/metrics.py defines them the dashboard must not query them
    # (docs/DEPLOY.md says where the SLO row goes).
    exported = exported_metrics()
    used = {name for q in dashboard_queries(dashboard) for name in metric_names(substitute(q.expr))}
    assert {n for n in used if n.startswith("lensbridge_slo_")} <= set(exported)


def test_grafana_provisioning_points_at_the_dashboard_and_prometheus():
    provisioning = ROOT / "deploy" / "grafana" / "provisioning"
    datasources = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())["datasources"]
    assert [d["type"] for d in datasources] == ["prometheus"] and datasources[0]["isDefault"]
    providers = yaml.safe_load((provisioning / "dashboards" / "lensbridge.yml").read_text())["providers"]
    assert providers[0]["type"] == "file"
    compose = yaml.safe_load((ROOT / "deploy" / "compose" / "docker-compose.yml").read_text())
    mounts = compose["services"]["grafana"]["volumes"]
    dashboard_mount = next(m for m in mounts if m.split(":")[0].endswith(DASHBOARD.name))
    assert dashboard_mount.split(":")[1].rsplit("/", 1)[0] == providers[0]["options"]["path"]
    assert datasources[0]["url"].split("//")[1].split(":")[0] in compose["services"]
