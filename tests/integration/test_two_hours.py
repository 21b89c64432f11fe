"""Two hours of traffic (>= 250k events): fast enough, skew-proof and crash-proof verdicts."""
from __future__ import annotations

import time

import orjson

from tests.integration.alert_checks import alert_ids, assert_consistent
from tests.integration.scenario_run import TIMING, read_alerts, score, simulate_scenario, windows_done
from tests.integration.worker_proc import WorkerProcess, lens_env, replay


def _run(tmp_path, admin, env, name: str, replays: list[list[str]], expected_windows: int,
         kill_at: float | None = None) -> tuple[float, list[dict]]:
    """Replay into a running worker (or a backlog first, when killing); returns the seconds from
    the first replayed event to the last merged window, and the alerts."""
    log = tmp_path / f"{name}.log"
    worker = WorkerProcess(env, log).start()
    worker.wait_ready()
    started = time.monotonic()
    for args in replays:
        replay(env, *args)
    if kill_at is not None:
        total = sum(1 for _ in open(tmp_path / "requests.ndjson")) + sum(1 for _ in open(tmp_path / "rum.ndjson"))
        worker.wait_for(lambda: worker.metric("lensbridge_events_total", 'lens="sre"')
                        + worker.metric("lensbridge_events_total", 'lens="cx"') >= kill_at * total,
                        300, "progress before the kill")
        worker.kill()
        worker = WorkerProcess(env, log).start()
    try:
        worker.wait_for(lambda: windows_done(admin, env, expected_windows), 400, "every merged window")
        elapsed = time.monotonic() - started
        time.sleep(3)  # the last decisions follow the last windows
        return elapsed, read_alerts(admin, env["LENSBRIDGE_TOPIC_ALERTS"])
    finally:
        worker.stop()


def test_two_hours_fast_skew_proof_and_crash_proof(kafka_bootstrap, admin, unique, tmp_path):
    expected = simulate_scenario(tmp_path, "scenarios/two_hours.json")
    truth = orjson.loads((tmp_path / "truth.json").read_bytes())
    windows = len(truth["sre"]) + len(truth["cx"])
    events = sum(1 for _ in open(tmp_path / "requests.ndjson")) + sum(1 for _ in open(tmp_path / "rum.ndjson"))
    assert events >= 250_000
    req, rum = str(tmp_path / "requests.ndjson"), str(tmp_path / "rum.ndjson")

    env = lens_env(kafka_bootstrap, f"{unique}a", tmp_path / "a", **TIMING)
    elapsed, alerts = _run(tmp_path, admin, env, "aligned", [["--requests", req, "--rum", rum]], windows)
    result = score(expected["verdicts"], alerts, 60)
    firing = {a["alert_id"] for a in alerts if a["status"] == "firing"}
    precision = len(result["matched"]) / max(1, len(firing))
    recall = len(result["matched"]) / len(expected["verdicts"])
    delays = [(hit["window_start"] - want["incident_start"]) / 60 for want, hit in result["matched"]]
    print(f"two hours: {events} events in {elapsed:.1f} s ({events / elapsed:.0f}/s); precision {precision:.2f}, "
          f"recall {recall:.2f}, detection delay in windows {delays}")
    assert elapsed < 180
    assert result["missed"] == [] and result["unexpected"] == []
    assert_consistent(alerts)

    env_skew = lens_env(kafka_bootstrap, f"{unique}b", tmp_path / "b", **TIMING)
    _, skewed = _run(tmp_path, admin, env_skew, "skewed", [["--rum", rum], ["--requests", req]], windows)
    assert alert_ids(skewed) == alert_ids(alerts)  # one topic fully before the other: same incidents

    env_crash = lens_env(kafka_bootstrap, f"{unique}c", tmp_path / "c", **TIMING)
    admin.create_topics(env_crash["LENSBRIDGE_TOPIC_REQUESTS"], env_crash["LENSBRIDGE_TOPIC_RUM"])
    _, crashed = _run(tmp_path, admin, env_crash, "crashed", [["--requests", req, "--rum", rum]], windows,
                      kill_at=0.5)
    assert alert_ids(crashed) == alert_ids(alerts)
    assert_consistent(crashed)
