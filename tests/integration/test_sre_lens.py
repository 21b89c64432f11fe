"""SRE lens on the real broker: every merged window equals the input's truth, also across SIGKILLs."""
from __future__ import annotations

import orjson
import tdigest

from tests.integration.sre_data import compare, merged_sre_windows, truths, write_requests
from tests.integration.worker_proc import WorkerProcess, kill_twice, lens_env, progress, replay

WINDOW_S, SLICE_S = 20, 5
TIMING = {"LENSBRIDGE_WINDOW_SECONDS": str(WINDOW_S), "LENSBRIDGE_GRACE_SECONDS": "2",
          "LENSBRIDGE_AVAILABILITY_SLICE_SECONDS": str(SLICE_S)}


def _wait_for_windows(worker: WorkerProcess, admin, topic: str, expected: int, timeout_s: float) -> dict:
    merged = {}

    def complete() -> bool:
        nonlocal merged
        merged = merged_sre_windows(admin.consume_all(topic, quiet_s=0.5, timeout_s=60))
        return len(merged) >= expected

    worker.wait_for(complete, timeout_s, f"{expected} merged windows on {topic}")
    return merged


def test_every_merged_window_matches_the_input(kafka_bootstrap, admin, unique, tmp_path):
    events = write_requests(tmp_path / "requests.ndjson", services=10, windows=30, window_s=WINDOW_S,
                            per_window=300, batch_share=0.02, hot_window=(5, 20_000))
    truth = truths(events, WINDOW_S, SLICE_S)
    env = lens_env(kafka_bootstrap, unique, tmp_path / "data", **TIMING)
    worker = WorkerProcess(env, tmp_path / "worker.log").start()
    try:
        worker.wait_ready()
        replay(env, "--requests", str(tmp_path / "requests.ndjson"))
        merged = _wait_for_windows(worker, admin, env["LENSBRIDGE_TOPIC_WINDOWS"], len(truth), 180)
        assert compare(merged, truth) == []
        assert worker.metric("lensbridge_events_total", 'lens="sre"') == len(events)
        assert worker.metric("lensbridge_late_events_total", 'lens="sre"') == 0
        # the last closed window's gauges are scraped as seconds
        assert worker.metric("lensbridge_sre_requests", 'service="svc-03"') > 0
        _digest_on_the_wire_loads_in_tdigest(admin, env["LENSBRIDGE_TOPIC_WINDOWS"])
    finally:
        worker.stop()


def _digest_on_the_wire_loads_in_tdigest(admin, windows_topic: str) -> None:
    # Merged windows are what leaves lensbridge: their digests are in the tdigest dict format
    # (partials between lens and joiner carry fastdigest's binary form).
    from app.core.lenses.digest import digest_from_wire

    windows = [orjson.loads(r.value) for r in admin.consume_all(windows_topic, quiet_s=0.2)]
    window = max((w for w in windows if w.get("lens") == "sre"), key=lambda w: w["requests"])
    theirs = tdigest.TDigest()
    theirs.update_from_dict(window["latency_ms_digest"])
    ours = digest_from_wire(window["latency_ms_digest"])
    assert theirs.n == window["requests"]
    for q in (0.5, 0.95, 0.99):
        assert abs(theirs.percentile(q * 100) / ours.quantile(q) - 1) < 0.01


def test_sigkill_twice_mid_stream_loses_and_duplicates_nothing(kafka_bootstrap, admin, unique, tmp_path):
    path = tmp_path / "requests.ndjson"
    events = write_requests(path, services=10, windows=30, window_s=WINDOW_S, per_window=700,
                            batch_share=0.02, seed=11)
    assert len(events) >= 200_000
    truth = truths(events, WINDOW_S, SLICE_S)
    env = lens_env(kafka_bootstrap, unique, tmp_path / "data", **TIMING)
    admin.create_topics(env["LENSBRIDGE_TOPIC_REQUESTS"], env["LENSBRIDGE_TOPIC_RUM"])
    replay(env, "--requests", str(path))  # the whole backlog waits in Kafka
    worker, report = kill_twice(env, tmp_path / "worker.log", "sre", len(events))
    try:
        merged = _wait_for_windows(worker, admin, env["LENSBRIDGE_TOPIC_WINDOWS"], len(truth), 400)
        report.append(progress(worker, "sre", "folded_after_last_restart"))
        print("crash report:", report)
        assert compare(merged, truth) == []
        # the restarts really re-read input that was already counted, and skipped it
        assert all(r["skipped_as_already_counted"] > 0 for r in report[1:])
    finally:
        worker.stop()
