"""Chaos: the broker stops for 60 s in the middle of a backlog and comes back.

The test runs its own Apache Kafka broker (scripts/kafka.sh on free ports, its own data dir
under tmp_path; the jars are shared with the repo's .kafka cache, or KAFKA_CACHE_DIR), never
the shared one. The worker must ride the outage out in-process: it never exits, /healthz and
`lensbridge_stalled` say "stalled" while the broker is away and "ok" again once it is back,
and every merged window of both lenses equals the input's truth (nothing lost, nothing
counted twice).
"""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.integration import kafka_helpers
from tests.integration.cx_data import compare as cx_compare
from tests.integration.cx_data import merged_cx_windows, write_rum
from tests.integration.cx_data import truths as cx_truths
from tests.integration.sre_data import compare as sre_compare
from tests.integration.sre_data import merged_sre_windows, write_requests
from tests.integration.sre_data import truths as sre_truths
from tests.integration.worker_proc import ROOT, WorkerProcess, free_port, lens_env, replay

WINDOW_S, SLICE_S = 20, 5
OUTAGE_S = 60
STALL_S = 10


class OwnBroker:
    """scripts/kafka.sh with its own ports, run files and data dir."""

    def __init__(self, tmp: Path):
        cache = Path(os.environ.get("KAFKA_CACHE_DIR", ROOT / ".kafka"))
        own_cache = tmp / "kafka-cache"
        own_cache.mkdir()
        if (cache / "libs" / ".resolved").exists():  # reuse the resolved jars; run files stay in tmp
            (own_cache / "libs").symlink_to(cache / "libs")
        self.port = free_port()
        self.env = {**os.environ, "KAFKA_PORT": str(self.port), "KAFKA_CONTROLLER_PORT": str(free_port()),
                    "KAFKA_CACHE_DIR": str(own_cache), "KAFKA_DATA_DIR": str(tmp / "kafka-data")}
        self.bootstrap = f"127.0.0.1:{self.port}"

    def run(self, command: str) -> str:
        done = subprocess.run([str(ROOT / "scripts" / "kafka.sh"), command], cwd=ROOT, env=self.env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"scripts/kafka.sh {command} failed:\n{done.stdout}\n{done.stderr}"
        return done.stdout


@pytest.fixture
def broker(tmp_path):
    own = OwnBroker(tmp_path)
    own.run("start")
    try:
        yield own
    finally:
        own.run("stop")


def _health(worker: WorkerProcess, path: str = "/healthz") -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{worker.metrics_port}{path}", timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _folded(worker: WorkerProcess) -> float:
    return worker.metric("lensbridge_events_total", 'lens="sre"') + worker.metric("lensbridge_events_total",
                                                                                  'lens="cx"')


def test_worker_rides_out_a_broker_outage(broker, tmp_path):
    requests = write_requests(tmp_path / "requests.ndjson", services=5, windows=20, window_s=WINDOW_S,
                              per_window=1000, batch_share=0.3, seed=31)
    rum = write_rum(tmp_path / "rum.ndjson", windows=20, window_s=WINDOW_S, views_per_window=250, seed=37)
    total = len(requests) + len(rum)
    env = lens_env(broker.bootstrap, uuid.uuid4().hex[:8], tmp_path / "data",
                   LENSBRIDGE_WINDOW_SECONDS=str(WINDOW_S), LENSBRIDGE_GRACE_SECONDS="2",
                   LENSBRIDGE_AVAILABILITY_SLICE_SECONDS=str(SLICE_S), LENSBRIDGE_STALL_SECONDS=str(STALL_S))
    asyncio.run(kafka_helpers.create_topics(broker.bootstrap, [env["LENSBRIDGE_TOPIC_REQUESTS"],
                                                              env["LENSBRIDGE_TOPIC_RUM"]]))
    replay(env, "--requests", str(tmp_path / "requests.ndjson"), "--rum", str(tmp_path / "rum.ndjson"))

    worker = WorkerProcess(env, tmp_path / "worker.log").start()
    try:
        worker.wait_ready()
        # Early: the stop itself takes seconds (controlled shutdown), and an idle machine folds
        # this backlog in well under a minute.
        worker.wait_for(lambda: _folded(worker) >= 0.02 * total, 120, "2% of the backlog folded")
        assert _health(worker)[0] == 200
        stopped = broker.run("stop")
        folded_at_stop = _folded(worker)
        assert folded_at_stop < total, "the backlog was done before the broker stopped: nothing was tested"

        seen = {"stalled_503": False, "stalled_gauge": False, "not_ready": False}
        stopped_at = time.monotonic()
        down_until, stall_seen_s = stopped_at + OUTAGE_S, None
        while time.monotonic() < down_until:
            worker.assert_alive()
            status, body = _health(worker)
            if status == 503:
                assert body["status"] == "stalled" and "LENSBRIDGE_STALL_SECONDS" in body["reason"], body
                seen["stalled_503"] = True
                stall_seen_s = stall_seen_s or time.monotonic() - stopped_at
            seen["stalled_gauge"] |= worker.metric("lensbridge_stalled") == 1.0
            seen["not_ready"] |= _health(worker, "/readyz")[0] == 503
            time.sleep(1)
        assert seen == {"stalled_503": True, "stalled_gauge": True, "not_ready": True}, worker.log_tail()

        restarted = broker.run("start")
        assert "already formatted" in restarted, f"the broker came back on a fresh data dir:\n{restarted}"
        back_at = time.monotonic()
        worker.wait_for(lambda: _health(worker)[0] == 200 and worker.metric("lensbridge_stalled") == 0.0
                        and _health(worker, "/readyz")[0] == 200, 120, "the health signal back up")
        healthy_after_s = time.monotonic() - back_at
        expected = len(sre_truths(requests, WINDOW_S, SLICE_S)) + len(cx_truths(rum, WINDOW_S))
        worker.wait_for(lambda: _window_keys(broker, env) >= expected, 300, f"{expected} merged windows")
        time.sleep(2)
        windows = asyncio.run(kafka_helpers.consume_all(broker.bootstrap, env["LENSBRIDGE_TOPIC_WINDOWS"],
                                                        quiet_s=0.5, timeout_s=60))
        assert sre_compare(merged_sre_windows(windows), sre_truths(requests, WINDOW_S, SLICE_S)) == []
        cx, resent = merged_cx_windows(windows)
        assert resent == []
        assert cx_compare(cx, cx_truths(rum, WINDOW_S)) == []
        assert _folded(worker) == total  # each event folded once: no replay counted twice
        worker.assert_alive()
        print(f"\noutage: {total} events, {folded_at_stop:.0f} folded when the broker stopped "
              f"({stopped.strip().splitlines()[-1]}); /healthz 503 {stall_seen_s:.0f} s after the stop "
              f"(LENSBRIDGE_STALL_SECONDS={STALL_S}), 200 again {healthy_after_s:.0f} s after the restart; "
              f"{expected} windows exact {time.monotonic() - back_at:.0f} s after the restart")
    finally:
        worker.stop()


def _window_keys(broker: OwnBroker, env: dict) -> int:
    records = asyncio.run(kafka_helpers.consume_all(broker.bootstrap, env["LENSBRIDGE_TOPIC_WINDOWS"],
                                                    quiet_s=0.3, timeout_s=60))
    return len({r.key for r in records})


def test_an_outage_longer_than_the_budget_exits_with_the_reason(broker, tmp_path):
    """Past LENSBRIDGE_BROKER_OUTAGE_SECONDS the worker stops waiting: exit 70 (restart = recovery
    from durable state), and the log names the setting."""
    write_requests(tmp_path / "requests.ndjson", services=5, windows=20, window_s=WINDOW_S, per_window=1000,
                   batch_share=0.0, seed=41)
    env = lens_env(broker.bootstrap, uuid.uuid4().hex[:8], tmp_path / "data",
                   LENSBRIDGE_WINDOW_SECONDS=str(WINDOW_S), LENSBRIDGE_AVAILABILITY_SLICE_SECONDS=str(SLICE_S),
                   LENSBRIDGE_BROKER_OUTAGE_SECONDS="10", LENSBRIDGE_STALL_SECONDS="5")
    asyncio.run(kafka_helpers.create_topics(broker.bootstrap, [env["LENSBRIDGE_TOPIC_REQUESTS"]]))
    replay(env, "--requests", str(tmp_path / "requests.ndjson"))
    worker = WorkerProcess(env, tmp_path / "worker.log").start()
    try:
        worker.wait_ready()
        worker.wait_for(lambda: worker.metric("lensbridge_events_total", 'lens="sre"') > 0, 120, "some progress")
        broker.run("stop")
        worker.proc.wait(timeout=120)
        assert worker.proc.returncode == 70, worker.log_tail()
        log = worker.log_path.read_text(errors="replace")
        assert "Kafka did not take a write within LENSBRIDGE_BROKER_OUTAGE_SECONDS=10 s" in log, worker.log_tail()
    finally:
        worker.stop()
