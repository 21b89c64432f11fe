"""deploy/prometheus: promtool checks the scrape config and the rules and runs the rules' unit
tests; the rules use only metrics the worker exports and carry runbooks.

promtool comes from the Debian package `prometheus`: the session fixture runs
scripts/install-tools.sh when it is missing, and fails (never skips) if that cannot install it.
"""
from __future__ import annotations

import subprocess

import pytest
import yaml

from tests.deploy.promql import (
    RULES,
    SYNTHESIZED,
    ensure_tool,
    exported_metrics,
    load_rules,
    metric_names,
    selector_name,
    selectors,
)
from tests.paths import ROOT

PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
RULE_TESTS = RULES.parent / "lensbridge.rules.test.yml"
INSTALL_TOOLS = ROOT / "scripts" / "install-tools.sh"


@pytest.fixture(scope="session")
def promtool() -> str:
    return ensure_tool("promtool")


def _run(args: list[str], cwd=ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=120)


def test_promtool_check_config(promtool):
    done = _run([promtool, "check", "config", str(PROMETHEUS_DIR / "prometheus.yml")])
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 rule files found" in done.stdout


def test_promtool_check_rules(promtool):
    done = _run([promtool, "check", "rules", str(RULES)])
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_test_rules(promtool):
    done = _run([promtool, "test", "rules", RULE_TESTS.name], cwd=RULE_TESTS.parent)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_rules_use_only_metrics_the_worker_exports():
    exported = set(exported_metrics())
    recorded = {rule["record"] for rule in load_rules() if "record" in rule}
    missing = {}
    for rule in load_rules():
        for name in metric_names(rule["expr"]) - exported - recorded - SYNTHESIZED:
            missing.setdefault(name, []).append(rule.get("alert") or rule.get("record"))
    assert not missing, f"rules use metrics app/observe/metrics.py does not define: {missing}"


def test_the_alerts_the_issue_asks_for_exist_with_runbooks():
    alerts = {rule["alert"]: rule for rule in load_rules() if "alert" in rule}
    wanted = {"LensbridgeWorkerDown": "up", "LensbridgeWatermarkLagGrowing": "lensbridge_watermark_lag_seconds",
              "LensbridgeInvalidEventsHigh": "lensbridge_invalid_events_total",
              "LensbridgeNoWindowsClosing": "lensbridge_windows_closed_total",
              "LensbridgeSreDipUserImpacting": "lensbridge_alert_active",
              "LensbridgeCxDipUnexplained": "lensbridge_alert_active"}
    for name, metric in wanted.items():
        assert name in alerts, name
        assert metric in metric_names(alerts[name]["expr"]), name
    for name, rule in alerts.items():
        assert rule["labels"]["severity"] in ("critical", "warning", "info"), name
        annotations = rule["annotations"]
        assert {"summary", "description", "runbook"} <= set(annotations), name
        assert len(annotations["runbook"].split()) >= 30, f"{name}: the runbook should say what to do"


def test_lens_alerts_select_their_verdict_kind():
    alerts = {rule["alert"]: rule for rule in load_rules() if "alert" in rule}
    for name, kind in (("LensbridgeSreDipUserImpacting", "sre_dip_user_impacting"),
                       ("LensbridgeCxDipUnexplained", "cx_dip_unexplained")):
        [selector] = selectors(alerts[name]["expr"])
        assert selector_name(selector) == "lensbridge_alert_active"
        assert [(m.name, m.value) for m in selector.matchers.matchers] == [("kind", kind)]


def test_every_alert_has_a_firing_case_in_the_rule_tests():
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    firing = {case["alertname"] for test in tests for case in test.get("alert_rule_test", []) if case["exp_alerts"]}
    quiet = {case["alertname"] for test in tests for case in test.get("alert_rule_test", []) if not case["exp_alerts"]}
    alerts = {rule["alert"] for rule in load_rules() if "alert" in rule}
    assert alerts - firing == set(), "alerts without a test where they fire"
    assert len(quiet & alerts) >= 5, "most alerts should also have a test where they stay quiet"


def test_scrape_job_is_named_for_the_rules():
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert "lensbridge" in jobs  # the rules select job="lensbridge"
    assert config["rule_files"] == ["rules/lensbridge.rules.yml"]


def test_install_tools_is_idempotent_and_quiet(promtool):
    done = _run([str(INSTALL_TOOLS)])
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines() == [line for line in done.stdout.splitlines() if line.startswith("install-tools: ")]
    assert len(done.stdout.splitlines()) == 1 and "present" in done.stdout
