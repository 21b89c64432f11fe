"""Every metric the Grafana dashboard queries is exported by a running worker fed a short replay.

The replay is the demo scenario cut short so that two incidents (sre_dip_user_impacting and
cx_dip_unexplained) are still open when the data ends, plus one invalid message and one late
event: then every metric the dashboard uses has samples, including the incident and correlation
gauges, which exist only while the correlator has something to say. Metrics the worker merely
declares (HELP/TYPE lines, no samples) do not count as exported for the panels: the test waits
for samples, and before the replay it checks that every family is at least declared.
"""
from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import orjson
from prometheus_client.parser import text_string_to_metric_families

from app.simulate import load_scenario, write_files
from worker_proc import ROOT, WorkerProcess, lens_env, replay

START_S = 1_700_000_000
WINDOW_S = 10  # the demo scenario's window
TIMING = {"LENSBRIDGE_WINDOW_SECONDS": str(WINDOW_S), "LENSBRIDGE_GRACE_SECONDS": "2",
          "LENSBRIDGE_AVAILABILITY_SLICE_SECONDS": "5"}


def deploy_promql():
    """tests/unit/test_deploy_promql.py: the PromQL helpers the unit tests use (one copy of them)."""
    name = "deploy_promql"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "tests" / "unit" / "test_deploy_promql.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # before exec: its dataclasses look their module up
        spec.loader.exec_module(module)
    return sys.modules[name]


def write_incident_traffic(out_dir: Path) -> dict:
    """Demo traffic that ends while a checkout error incident and a frontend bug are both open.

    ~25k requests and ~12k RUM events over 17 ten-second windows (12 of warm-up), then one line
    that is not JSON and one request for the first window, which arrives after it closed.
    """
    scenario = json.loads((ROOT / "scenarios" / "demo.json").read_text())
    incidents = {i["name"]: i for i in scenario["incidents"]}
    errors = incidents["checkout-errors-peak"]  # expect sre_dip_user_impacting
    frontend = {**incidents["browsers-frontend-bug"], "start_window": errors["start_window"]}  # cx_dip_unexplained
    scenario.update(name="dashboard", duration_windows=errors["start_window"] + errors["duration_windows"],
                    incidents=[errors, frontend])
    scenario.pop("traffic_profile")  # its points lie past the shortened end
    path = out_dir / "scenario.json"
    path.write_text(json.dumps(scenario))
    summary = write_files(load_scenario(path), out_dir, start_s=START_S, seed=1)
    late = {"ts": summary["start_s"] + 1, "service": "checkout", "latency_ms": 12.0, "status": 200}
    with open(out_dir / "requests.ndjson", "ab") as fh:
        fh.write(b"this line is not JSON\n" + orjson.dumps(late) + b"\n")
    return summary


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
    promql = deploy_promql()
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
