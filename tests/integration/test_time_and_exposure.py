"""Time sanity and exposure on the real broker.

One event stamped 295 s in the future (inside the 300 s skew limit) must not make the honest
traffic behind it late; a worker with default settings opens no Faust web port; topics are
created with the replication factor LENSBRIDGE_REPLICATION_FACTOR asks for.
"""
from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time

import orjson
from aiokafka.admin import AIOKafkaAdminClient

from app.kafka.topics import with_replication_factor
from app.settings import Settings
from tests.integration.sre_data import merged_sre_windows
from tests.integration.worker_proc import ROOT, WorkerProcess, lens_env

WINDOW_S = 5
TIMING = {"LENSBRIDGE_WINDOW_SECONDS": str(WINDOW_S), "LENSBRIDGE_GRACE_SECONDS": "1",
          "LENSBRIDGE_AVAILABILITY_SLICE_SECONDS": "5", "LENSBRIDGE_IDLE_SECONDS": "2"}
HONEST = 1000


def _request(ts_s: float, service: str) -> bytes:
    return orjson.dumps({"ts": ts_s, "service": service, "latency_ms": 12.5, "status": 200})


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1.0)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_one_future_event_makes_no_honest_event_late(kafka_bootstrap, admin, unique, tmp_path):
    env = lens_env(kafka_bootstrap, unique, tmp_path / "data", **TIMING)
    worker = WorkerProcess(env, tmp_path / "worker.log").start()
    try:
        worker.wait_ready()
        # Nothing needs Faust's web server: by default it does not listen at all.
        assert not _listening(int(worker.env["LENSBRIDGE_WEB_PORT"]))
        assert _listening(worker.metrics_port)
        topic = env["LENSBRIDGE_TOPIC_REQUESTS"]
        now = time.time()
        # Same key: one partition, the future event first in offset order.
        admin.produce(topic, [(b"k", _request(now + 295, "future"))])
        admin.produce(topic, [(b"k", _request(now + i * 0.001, "honest")) for i in range(HONEST)])
        worker.wait_for(lambda: worker.metric("lensbridge_events_total", 'lens="sre"') == HONEST + 1, 90,
                        f"{HONEST + 1} events folded")
        assert worker.metric("lensbridge_late_events_total", 'lens="sre"') == 0

        def honest_windows() -> dict:
            records = admin.consume_all(env["LENSBRIDGE_TOPIC_WINDOWS"], quiet_s=0.5, timeout_s=30)
            return {k: w for k, w in merged_sre_windows(records).items() if k[0] == "honest"}

        worker.wait_for(lambda: sum(w["requests"] for w in honest_windows().values()) == HONEST, 90,
                        "every honest event in a closed, merged window")
        letters = [orjson.loads(r.value) for r in admin.consume_all(env["LENSBRIDGE_TOPIC_DLQ"], quiet_s=0.5)]
        assert [d["reason"] for d in letters if d.get("reason") == "late"] == []
        assert not any(k[0] == "future" for k in merged_sre_windows(
            admin.consume_all(env["LENSBRIDGE_TOPIC_WINDOWS"], quiet_s=0.2))), "the future window is still open"
        worker.assert_alive()
    finally:
        worker.stop()


async def _replication_of(bootstrap: str, topic: str) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
        return len(described[0]["partitions"][0]["replicas"])
    finally:
        await admin.close()


def test_replication_factor_is_the_brokers_default_or_the_setting(kafka_bootstrap, unique, tmp_path):
    resolved = asyncio.run(with_replication_factor(Settings(bootstrap_servers=kafka_bootstrap)))
    assert resolved.replication_factor >= 1  # read from the broker's default.replication.factor
    # Asking for more replicas than this one-broker cluster has: the worker refuses at start
    # with the broker's reason, so the setting really reaches topic creation.
    env = lens_env(kafka_bootstrap, unique, tmp_path / "data", LENSBRIDGE_REPLICATION_FACTOR="3")
    done = subprocess.run([sys.executable, "-m", "app.cli", "worker"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "could not create topics" in done.stderr and "eplication factor" in done.stderr, done.stderr
