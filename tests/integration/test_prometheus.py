"""A real Prometheus server (Debian package `prometheus`) on loopback scrapes a running worker fed
a short replay, with our rules loaded: lensbridge series of both lenses arrive, every rule
evaluates, the two paging lens alerts fire, every dashboard query returns data, and the worker's
/metrics passes `promtool check metrics`.

One worker and one Prometheus serve all tests of this module (started once, ~20 s).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.deploy import promql
from tests.integration.dashboard_data import TIMING, write_incident_traffic
from tests.integration.worker_proc import ROOT, WorkerProcess, free_port, lens_env, replay

RULES = ROOT / "deploy" / "prometheus" / "rules" / "lensbridge.rules.yml"


class PrometheusServer:
    def __init__(self, binary: str, workdir: Path, scrape_target: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = workdir / "prometheus.yml"
        self.config.write_text(json.dumps({  # JSON is YAML
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
            "rule_files": [str(RULES)],
            "scrape_configs": [{"job_name": "lensbridge", "static_configs": [{"targets": [scrape_target]}]}],
        }))
        self.log = workdir / "prometheus.log"
        self.proc = subprocess.Popen(
            [binary, f"--config.file={self.config}", f"--storage.tsdb.path={workdir / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
            stdout=open(self.log, "wb"), stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"prometheus exited {self.proc.returncode}:\n{self.log.read_text()}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"prometheus not ready:\n{self.log.read_text()}")

    def api(self, path: str, **params) -> dict | list:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}{query}", timeout=10) as resp:
            body = json.loads(resp.read())
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict]:
        return self.api("query", query=expr)["result"]

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=15)


def eventually(check, timeout_s: float, what: str, worker: WorkerProcess, interval_s: float = 0.5):
    """Poll `check()` until it returns a truthy value; fail with its last answer."""
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        worker.assert_alive()
        last = check()
        if last:
            return last
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}; last: {last}")


@pytest.fixture(scope="module")
def stack(kafka_bootstrap, tmp_path_factory):
    """A worker fed the dashboard's incident traffic, scraped every second by a real Prometheus."""
    prometheus_bin = promql.ensure_tool("prometheus")
    workdir = tmp_path_factory.mktemp("prometheus")
    write_incident_traffic(workdir)
    env = lens_env(kafka_bootstrap, uuid.uuid4().hex[:8], workdir / "data", **TIMING)
    worker = WorkerProcess(env, workdir / "worker.log").start()
    prometheus = None
    try:
        worker.wait_ready()
        prometheus = PrometheusServer(prometheus_bin, workdir, f"127.0.0.1:{worker.metrics_port}")
        prometheus.wait_ready()
        replay(env, "--requests", str(workdir / "requests.ndjson"), "--rum", str(workdir / "rum.ndjson"))
        yield worker, prometheus
    finally:
        if prometheus:
            prometheus.stop()
        worker.stop()


def test_prometheus_has_series_of_both_lenses(stack):
    worker, prometheus = stack
    up = eventually(lambda: prometheus.query('up{job="lensbridge"}'), 15, "the first scrape", worker)
    assert up[0]["value"][1] == "1"

    def both_lenses():
        sre = prometheus.query('lensbridge_sre_latency_seconds{job="lensbridge", quantile="0.95"}')
        cx = prometheus.query('lensbridge_cx_frustration_ratio{job="lensbridge"}')
        return (sre, cx) if sre and cx else None

    sre, cx = eventually(both_lenses, 45, "SRE and CX gauges in Prometheus", worker)
    assert {s["metric"]["service"] for s in sre} >= {"checkout", "gateway"}
    assert {s["metric"]["cohort"] for s in cx} >= {"browsers", "buyers_web"}
    names = {s["metric"]["__name__"] for s in prometheus.query('{__name__=~"lensbridge_(sre|cx)_.+"}')}
    assert {n.split("_")[1] for n in names} == {"sre", "cx"}


def test_rules_evaluate_and_the_paging_lens_alerts_fire(stack):
    worker, prometheus = stack
    groups = prometheus.api("rules")["groups"]
    assert {g["name"] for g in groups} == {"lensbridge.recording", "lensbridge.health", "lensbridge.lenses"}

    def firing():
        alerts = prometheus.api("alerts")["alerts"]
        names = {a["labels"]["alertname"] for a in alerts if a["state"] == "firing"}
        return alerts if {"LensbridgeSreDipUserImpacting", "LensbridgeCxDipUnexplained"} <= names else None

    alerts = eventually(firing, 45, "the lens alerts to fire in Prometheus", worker)
    by_name = {a["labels"]["alertname"]: a for a in alerts}
    assert "runbook" in by_name["LensbridgeCxDipUnexplained"]["annotations"]
    print("firing:", sorted((a["labels"]["alertname"], a["labels"].get("subject")) for a in alerts))
    # every rule evaluated without error on real data
    rules = [r for g in prometheus.api("rules")["groups"] for r in g["rules"]]
    assert [r["name"] for r in rules if r["health"] != "ok"] == []
    # the recording rules produce series from real data (their group evaluates on its own clock)
    for record in ("lensbridge:events:rate5m", "lensbridge:windows_closed:rate10m", "lensbridge:alerts_active:count"):
        eventually(lambda record=record: prometheus.query(record), 10, f"recording rule {record}", worker)


def test_every_dashboard_query_returns_data(stack):
    worker, prometheus = stack
    queries = promql.dashboard_queries(promql.load_dashboard())
    variables = {"job": "lensbridge", "__range": "5m"}

    def empty_queries():
        empty = [q.where for q in queries if not prometheus.query(promql.substitute(q.expr, variables))]
        return empty or None

    try:
        eventually(lambda: not empty_queries(), 45, "data for every dashboard query", worker, interval_s=1)
    except AssertionError:
        raise AssertionError(f"dashboard queries with no data: {empty_queries()}") from None


def test_worker_metrics_pass_promtool_check_metrics(stack):
    worker, _ = stack
    promtool = promql.ensure_tool("promtool")
    worker.wait_for(lambda: "lensbridge_alert_active{" in worker.metrics(), 45, "incident gauges")
    done = subprocess.run([promtool, "check", "metrics"], input=worker.metrics(), capture_output=True, text=True,
                          timeout=60)
    findings = {line.strip() for line in (done.stdout + done.stderr).splitlines() if line.strip()}
    # exit 1: the exposition does not parse; exit 3: lint findings. Quantiles are summaries, so
    # promtool accepts the whole output as it is.
    assert done.returncode == 0 and not findings, done.stdout + done.stderr
