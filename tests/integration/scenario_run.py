"""Scenario runs on the real broker: simulate a scenario, read the alerts, score them."""
from __future__ import annotations

import subprocess
import sys

import orjson

from tests.integration.worker_proc import ROOT

START_S = 1_700_000_000


def simulate_scenario(out_dir, scenario: str) -> dict:
    done = subprocess.run([sys.executable, "-m", "app.cli", "simulate", "--scenario", scenario, "--out",
                           str(out_dir), "--start", str(START_S), "--seed", "1"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return orjson.loads((out_dir / "expected.json").read_bytes())


def read_alerts(admin, topic: str) -> list[dict]:
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


# 60-second windows: the long scenarios (two hours, six hours of SLO burns).
TIMING = {"LENSBRIDGE_WINDOW_SECONDS": "60", "LENSBRIDGE_GRACE_SECONDS": "5",
          "LENSBRIDGE_AVAILABILITY_SLICE_SECONDS": "10"}


def windows_done(admin, env, expected_windows: int) -> bool:
    records = admin.consume_all(env["LENSBRIDGE_TOPIC_WINDOWS"], quiet_s=0.3, timeout_s=60)
    return len({r.key for r in records}) >= expected_windows
