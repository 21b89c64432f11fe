"""The product's point, end to end on the real broker: scripted incidents -> the four verdicts."""
from __future__ import annotations

from tests.integration.scenario_run import read_alerts, score, simulate_scenario
from tests.integration.worker_proc import WorkerProcess, lens_env, replay


def test_demo_scenario_gives_each_expected_verdict(kafka_bootstrap, admin, unique, tmp_path):
    expected = simulate_scenario(tmp_path, "scenarios/demo.json")
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
            alerts = read_alerts(admin, env["LENSBRIDGE_TOPIC_ALERTS"])
            result = score(verdicts, alerts, window_s)
            resolved.clear()
            resolved.update(a["alert_id"] for a in alerts if a["status"] == "resolved")
            return not result["missed"] and all(hit["alert_id"] in resolved for _, hit in result["matched"])

        worker.wait_for(all_resolved, 240, "every expected verdict to fire and resolve")
        alerts = read_alerts(admin, env["LENSBRIDGE_TOPIC_ALERTS"])
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
