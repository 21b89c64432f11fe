"""Every metric the Grafana dashboard queries is exported by a running worker fed a short replay.

The replay is the demo scenario cut short so that two incidents (sre_dip_user_impacting and
cx_dip_unexplained) are still open when the data ends, plus one invalid message and one late
event: then every metric the dashboard uses has samples, including the incident and correlation
gauges, which exist only while the correlator has something to say. Metrics the worker merely
declares (HELP/TYPE lines, no samples) do not count as exported for the panels: the test waits
for samples, and before the replay it checks that every family is at least declared.
"""
from __future__ import annotations

import re

from prometheus_client.parser import text_string_to_metric_families

from tests.deploy import promql
from tests.integration.dashboard_data import TIMING, write_incident_traffic
from tests.integration.worker_proc import WorkerProcess, lens_env, replay


def samples(text: str) -> list[tuple[str, dict]]:
    return [(s.name, s.labels) for family in text_string_to_metric_families(text) for s in family.samples]


def declared(text: str) -> set[str]:
    """Sample names whose family has a TYPE line (counters declare `x_total`, gauges `x`)."""
    names = set()
    for match in re.finditer(r"^# TYPE (\S+) (\w+)$", text, re.M):
        name, kind = match.groups()
        names.add(name)
        if kind == "counter":
            names |= {name.removesuffix("_total") + "_total", name.removesuffix("_total") + "_created"}
    return names


def matches(selector, name: str, labels: dict, target_labels: set[str]) -> bool:
    """Does one exposed sample satisfy a PromQL selector (target labels like job are not the worker's)?"""
    if name != selector.name:
        return False
    for m in selector.matchers.matchers:
        if m.name in target_labels:
            continue
        value, op = labels.get(m.name, ""), str(m.op)
        ok = {"MatchOp.Equal": value == m.value, "MatchOp.NotEqual": value != m.value,
              "MatchOp.Re": re.fullmatch(m.value, value) is not None,
              "MatchOp.NotRe": re.fullmatch(m.value, value) is None}[op]
        if not ok:
            return False
    return True


def test_every_dashboard_metric_is_exported_by_a_running_worker(kafka_bootstrap, unique, tmp_path):
    queries = promql.dashboard_queries(promql.load_dashboard())
    wanted = {name for q in queries for name in promql.metric_names(promql.substitute(q.expr))}
    assert len(wanted) >= 15
    write_incident_traffic(tmp_path)
    env = lens_env(kafka_bootstrap, unique, tmp_path / "data", **TIMING)
    worker = WorkerProcess(env, tmp_path / "worker.log").start()
    try:
        worker.wait_ready()
        # Before any input: every family is declared, even those whose samples come later.
        assert wanted - declared(worker.metrics()) == set()
        replay(env, "--requests", str(tmp_path / "requests.ndjson"), "--rum", str(tmp_path / "rum.ndjson"))
        exported: set[str] = set()

        def all_exported() -> bool:
            exported.clear()
            exported.update(name for name, _ in samples(worker.metrics()))
            return wanted <= exported

        try:
            worker.wait_for(all_exported, 50, "samples of every dashboard metric")
        except TimeoutError as exc:
            raise AssertionError(f"dashboard metrics without samples: {sorted(wanted - exported)}\n{exc}") from None
        # Each selector, with its label matchers (variables = all), selects real series.
        exposed = samples(worker.metrics())
        empty = []
        for query in queries:
            for selector in promql.selectors(promql.substitute(query.expr)):
                if not any(matches(selector, n, labels, promql.TARGET_LABELS) for n, labels in exposed):
                    empty.append(f"{query.where}: {selector}")
        assert empty == [], f"selectors that match no exported series: {empty}"
    finally:
        worker.stop()
