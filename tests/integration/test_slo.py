"""SLO burn alerts on the real broker: a page at peak users felt, a ticket off-peak nobody felt,
and no page for a handful of errors at 3 a.m."""
from __future__ import annotations

import subprocess
import sys

import orjson

from tests.integration.scenario_run import TIMING, read_alerts, simulate_scenario, windows_done
from tests.integration.worker_proc import ROOT, WorkerProcess, lens_env, replay

SLO_FILE = ROOT / "tests" / "data" / "slo_six_hours.yaml"


def test_bad_slo_file_stops_the_worker_naming_line_and_reason(tmp_path):
    bad = tmp_path / "slo.yaml"
    bad.write_text("version: lensbridge/v1\nservice: checkout\nslos:\n  - name: a\n    objective: 120\n"
                   "    sli: {type: errors}\n")
    env = lens_env("127.0.0.1:1", "badslo", tmp_path / "data", LENSBRIDGE_SLO_FILE=str(bad))
    done = subprocess.run([sys.executable, "-m", "app.cli", "worker"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert f"{bad}:5" in done.stderr and "objective" in done.stderr, done.stderr


def test_six_hours_of_burns(kafka_bootstrap, admin, unique, tmp_path):
    simulate_scenario(tmp_path, "scenarios/slo_six_hours.json")
    truth = orjson.loads((tmp_path / "truth.json").read_bytes())
    env = lens_env(kafka_bootstrap, unique, tmp_path / "data", LENSBRIDGE_SLO_FILE=str(SLO_FILE), **TIMING)
    worker = WorkerProcess(env, tmp_path / "worker.log").start()
    try:
        worker.wait_ready()
        replay(env, "--requests", str(tmp_path / "requests.ndjson"), "--rum", str(tmp_path / "rum.ndjson"))
        worker.wait_for(lambda: windows_done(admin, env, len(truth["sre"]) + len(truth["cx"])), 400,
                        "every merged window")
        worker.wait_for(lambda: worker.metric("lensbridge_slo_objective_ratio",
                                              'service="payments",slo="availability"') == 0.999, 30, "SLO gauges")
        burns = [a for a in read_alerts(admin, env["LENSBRIDGE_TOPIC_ALERTS"]) if a["kind"] == "slo_burn"]
        ledger_1h = worker.metric("lensbridge_slo_burn_rate", 'service="ledger",slo="availability",window="1h"')
    finally:
        worker.stop()
    start = truth["sre"][0]["window_start"]
    incidents: dict[str, list[dict]] = {}
    for alert in burns:
        incidents.setdefault(alert["alert_id"], []).append(alert)
    by_subject = {msgs[0]["subject"]: msgs for msgs in incidents.values()}
    assert sorted(by_subject) == ["catalog", "payments"], sorted(by_subject)
    assert ledger_1h >= 14.4  # the blip burned fast enough to page: the low-traffic guard held it
    assert len(incidents) == 2

    page = by_subject["payments"]
    first = page[0]
    assert first["status"] == "firing" and first["slo"]["action"] == "page" and first["severity"] == "critical"
    assert 70 <= (first["window_start"] - start) // 60 < 75  # while the incident (windows 70-74) lasts
    assert first["impact"]["checked"] and first["impact"]["cohorts"], first["impact"]  # users hurt at peak
    assert page[-1]["status"] == "resolved"

    ticket = by_subject["catalog"]
    first = ticket[0]
    assert first["status"] == "firing" and first["slo"]["action"] == "ticket" and first["severity"] == "warning"
    assert 230 <= (first["window_start"] - start) // 60 < 330
    assert first["impact"]["checked"] and first["impact"]["cohorts"] == []  # off-peak: nobody felt it
