"""The product's point, end to end on the real broker: scripted incidents -> the four verdicts."""
from __future__ import annotations

import subprocess
import sys

import orjson

from worker_proc import ROOT, WorkerProcess, lens_env, replay

START_S = 1_700_000_000


def _simulate(out_dir, scenario: str) -> dict:
    done = subprocess.run([sys.executable, "-m", "app.cli", "simulate", "--scenario", scenario, "--out",
                           str(out_dir), "--start", str(START_S), "--seed", "1"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return orjson.loads((out_dir / "expected.json").read_bytes())


def _alerts(admin, topic: str) -> list[dict]:
    return [orjson.loads(r.value) for r in admin.consume_all(topic, quiet_s=1.0, timeout_s=60)]


def score(expected: list[dict], alerts: list[dict], window_s: int) -> dict:
    """Match firing alerts to expected verdicts: same kind and subject, first firing within one
    window of the incident's start. Returns matches, misses and unexpected alert ids."""
    first_firing: dict[str, dict] = {}
    for alert in alerts:
        if alert["status"] == "firing" and alert["alert_id"] not in first_firing:
            first_firing[alert["alert_id"]] = alert
    matched, missed, used = [], [], set()
    for want in expected:
        hits = [a for a in first_firing.values() if a["kind"] == want["kind"] and a["subject"] == want["subject"]
                and abs(a["incident_start"] - want["incident_start"]) <= window_s and a["alert_id"] not in used]
        if not hits:
            missed.append(want)
            continue
        hit = min(hits, key=lambda a: a["incident_start"])
        used.add(hit["alert_id"])
        matched.append((want, hit))
    unexpected = [a for aid, a in first_firing.items() if aid not in used]
    return {"matched": matched, "missed": missed, "unexpected": unexpected}


def test_demo_scenario_gives_each_expected_verdict(kafka_bootstrap, admin, unique, tmp_path):
    expected = _simulate(tmp_path, "scenarios/demo.json")
    window_s = expected.get("window_s", 10)
    env = lens_env(kafka_bootstrap, unique, tmp_path / "data", LENSBRIDGE_WINDOW_SECONDS=str(window_s),
                   LENSBRIDGE_GRACE_SECONDS="2", LENSBRIDGE_AVAILABILITY_SLICE_SECONDS="5")
    worker = WorkerProcess(env, tmp_path / "worker.log").start()
    try:
        worker.wait_ready()
        replay(env, "--requests", str(tmp_path / "requests.ndjson"), "--rum", str(tmp_path / "rum.ndjson"))
        verdicts = expected["verdicts"]
        resolved: set[str] = set()

        def all_resolved() -> bool:
            alerts = _alerts(admin, env["LENSBRIDGE_TOPIC_ALERTS"])
            result = score(verdicts, alerts, window_s)
            resolved.clear()
            resolved.update(a["alert_id"] for a in alerts if a["status"] == "resolved")
            return not result["missed"] and all(hit["alert_id"] in resolved for _, hit in result["matched"])

        worker.wait_for(all_resolved, 240, "every expected verdict to fire and resolve")
        alerts = _alerts(admin, env["LENSBRIDGE_TOPIC_ALERTS"])
        result = score(verdicts, alerts, window_s)
        for want, hit in result["matched"]:
            if want.get("top_candidate"):
                assert hit["candidates"][0]["service"] == want["top_candidate"], hit
        assert result["unexpected"] == [], [(a["kind"], a["subject"], a["window_start"]) for a in result["unexpected"]]
        # one id per incident, and no two messages of one id contradict each other
        by_id: dict[str, list[dict]] = {}
        for alert in alerts:
            by_id.setdefault(alert["alert_id"], []).append(alert)
        for messages in by_id.values():
            assert len({(m["kind"].split("_dip")[0], m["subject"], m["incident_start"]) for m in messages}) == 1
        assert worker.metric("lensbridge_alerts_total", 'kind="cx_dip_unexplained",status="firing"') >= 1
    finally:
        worker.stop()
