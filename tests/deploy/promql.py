"""PromQL and dashboard helpers of the deploy tests: which metric names, selectors and
grouping labels the shipped dashboard and rules use, and what the worker exports."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from typing import Iterator

import promql_parser
import pytest
import yaml
from prometheus_client import CollectorRegistry

from app.observe.metrics import Metrics
from tests.paths import ROOT

DASHBOARD = ROOT / "deploy" / "grafana" / "lensbridge.json"


RULES = ROOT / "deploy" / "prometheus" / "rules" / "lensbridge.rules.yml"


# Labels Prometheus adds to every scraped series (target labels), not the worker.
TARGET_LABELS = {"job", "instance", "deployment", "namespace", "pod", "container"}


# Series Prometheus synthesizes per target; rules may use them, the dashboard does not.
SYNTHESIZED = {"up", "scrape_duration_seconds", "scrape_samples_scraped", "scrape_series_added"}


# Grafana's built-in interval variables, replaced by a plausible duration before parsing.
GRAFANA_INTERVALS = {"__rate_interval": "1m", "__interval": "15s", "__range": "1h", "__range_s": "3600"}


@dataclass(frozen=True)
class Query:
    where: str  # "panel 'SRE: error ratio' target A", for failure messages
    expr: str  # as written, with Grafana variables


_SUFFIXES = {"counter": ("_total", "_created"), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count", "_created"),
             "summary": ("", "_sum", "_count", "_created"), "info": ("_info",), "stateset": ("",), "unknown": ("",)}


def exported_metrics() -> dict[str, set[str]]:
    """Sample name -> label names, for every metric of the worker's bundle (app/observe/metrics.py).

    Names are what the text exposition shows: a Counter("x") exports x_total and x_created.
    """
    metrics = Metrics(CollectorRegistry())
    names: dict[str, set[str]] = {}
    for collector in list(metrics.registry._collector_to_names):  # no public list of collectors
        labels = set(getattr(collector, "_labelnames", ()))
        for family in collector.describe():
            for suffix in _SUFFIXES[family.type]:
                names[family.name + suffix] = labels
    return names


def substitute(expr: str, variables: dict[str, str] | None = None) -> str:
    """Grafana variables -> values: template variables become `.*` (inside =~ matchers)."""
    variables = {**GRAFANA_INTERVALS, **(variables or {})}

    def value(match: re.Match) -> str:
        name = match.group(1) or match.group(2)
        return variables.get(name, ".*")

    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", value, expr)


def selectors(expr: str) -> list:
    """Every VectorSelector in a PromQL expression (raises ValueError if it does not parse)."""
    found: list = []

    def walk(node) -> None:
        if node is None or isinstance(node, (promql_parser.NumberLiteral, promql_parser.StringLiteral)):
            return
        if isinstance(node, promql_parser.VectorSelector):
            found.append(node)
        elif isinstance(node, promql_parser.MatrixSelector):
            walk(node.vector_selector)
        elif isinstance(node, promql_parser.BinaryExpr):
            walk(node.lhs)
            walk(node.rhs)
        elif isinstance(node, promql_parser.AggregateExpr):
            walk(node.expr)
            walk(node.param)
        elif isinstance(node, promql_parser.Call):
            for arg in node.args:
                walk(arg)
        elif isinstance(node, (promql_parser.ParenExpr, promql_parser.UnaryExpr, promql_parser.SubqueryExpr)):
            walk(node.expr)
        else:
            raise TypeError(f"unknown PromQL node {type(node).__name__} in {expr!r}")

    walk(promql_parser.parse(expr))
    return found


def selector_name(selector) -> str:
    if selector.name:
        return selector.name
    for matcher in selector.matchers.matchers:
        if matcher.name == "__name__" and str(matcher.op).endswith("Equal") and "Not" not in str(matcher.op):
            return matcher.value
    raise ValueError(f"selector without a metric name: {selector}")


def metric_names(expr: str) -> set[str]:
    return {selector_name(s) for s in selectors(expr)}


def grouping_labels(expr: str) -> set[str]:
    """Labels named in `by (...)` of aggregations."""
    labels: set[str] = set()

    def walk(node) -> None:
        if isinstance(node, promql_parser.AggregateExpr):
            if node.modifier is not None and "By" in str(node.modifier.type):
                labels.update(node.modifier.labels)
        for attr in ("expr", "lhs", "rhs", "param", "vector_selector"):
            child = getattr(node, attr, None)
            if child is not None and not isinstance(child, (int, float, str)):
                walk(child)
        for arg in getattr(node, "args", ()) or ():
            walk(arg)

    walk(promql_parser.parse(expr))
    return labels


_LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(?:(?P<selector>.+),\s*)?(?P<label>\w+)\s*\)\s*$")


_QUERY_RESULT = re.compile(r"^\s*query_result\((?P<expr>.+)\)\s*$")


def variable_expr(query: str) -> str | None:
    """The PromQL inside a Grafana Prometheus variable query (label_values / query_result)."""
    match = _LABEL_VALUES.match(query)
    if match:
        return match.group("selector")
    match = _QUERY_RESULT.match(query)
    return match.group("expr") if match else query


def dashboard_panels(dashboard: dict) -> Iterator[dict]:
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])  # panels inside collapsed rows


def dashboard_queries(dashboard: dict) -> list[Query]:
    queries = []
    for panel in dashboard_panels(dashboard):
        for target in panel.get("targets", []):
            if target.get("expr"):
                queries.append(Query(f"panel {panel.get('title')!r} target {target.get('refId')}", target["expr"]))
    for annotation in dashboard.get("annotations", {}).get("list", []):
        if annotation.get("expr"):
            queries.append(Query(f"annotation {annotation.get('name')!r}", annotation["expr"]))
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") != "query":
            continue
        raw = variable["query"]["query"] if isinstance(variable.get("query"), dict) else variable.get("query")
        expr = variable_expr(raw)
        if expr:
            queries.append(Query(f"variable {variable['name']!r}", expr))
    return queries


def load_dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def load_rules() -> list[dict]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def ensure_tool(name: str) -> str:
    """Path of a tool from the `prometheus` Debian package, installing it if needed (never skips)."""
    install = ROOT / "scripts" / "install-tools.sh"
    if not shutil.which(name):
        done = subprocess.run([str(install)], capture_output=True, text=True, timeout=900)
        if done.returncode != 0 or not shutil.which(name):
            pytest.fail(f"{name} is missing and {install.relative_to(ROOT)} could not install it "
                        f"(exit {done.returncode}):\n{done.stdout}\n{done.stderr}", pytrace=False)
    return shutil.which(name)
