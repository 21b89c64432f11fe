"""Every table value stays far under its topic's limit at the largest sizes the caps allow.

(a) one CX slot (one cohort, one window, one partition) with MAX_SLOT_IDS sessions, each with
its own view that completes and names a service: every id set at its cap; the merged window
counts every session exactly, and the slot's changelog record is a few MB.
(b) the correlator with 10,000 services over enough windows that its old single table value
would have been over the state limit: the joiner keeps running, the merged windows of every
service are exact, and every joiner state record on the changelog is small.
"""
from __future__ import annotations

import asyncio
import time

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from app.core.lenses.idset import MAX_SLOT_IDS
from app.faust.app import MAX_STATE_BYTES
from tests.integration.cx_data import START_S, merged_cx_windows
from tests.integration.kafka_helpers import partition_count
from tests.integration.sre_data import merged_sre_windows
from tests.integration.worker_proc import WorkerProcess, lens_env

WINDOW_S = 20
TIMING = {"LENSBRIDGE_WINDOW_SECONDS": str(WINDOW_S), "LENSBRIDGE_GRACE_SECONDS": "2"}
MESSAGE_EVENTS = 4_000  # events per JSON array: ~500 KB, under LENSBRIDGE_MAX_MESSAGE_BYTES
SERVICES, SRE_WINDOWS = 10_000, 7


async def _produce(bootstrap: str, topic: str, messages: list[tuple[int, bytes]]) -> None:
    """(partition, value) pairs, in order per partition, acknowledged by the broker."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5,
                                max_request_size=4 * 1024 * 1024)
    await producer.start()
    try:
        futures = [await producer.send(topic, value, partition=p) for p, value in messages]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def _arrays(events: list[dict], partition: int) -> list[tuple[int, bytes]]:
    return [(partition, orjson.dumps(events[i:i + MESSAGE_EVENTS]))
            for i in range(0, len(events), MESSAGE_EVENTS)]


async def _quiet(worker: WorkerProcess, bootstrap: str, topic: str, at_least: int, timeout_s: float) -> None:
    n = await partition_count(bootstrap, topic, timeout_s=timeout_s)
    tps = [TopicPartition(topic, p) for p in range(n)]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(tps)
        deadline, last, since = time.monotonic() + timeout_s, -1, time.monotonic()
        while time.monotonic() < deadline:
            worker.assert_alive()
            now = sum((await consumer.end_offsets(tps)).values())
            if now != last:
                last, since = now, time.monotonic()
            elif now >= at_least and time.monotonic() - since >= 3:
                return
            await asyncio.sleep(0.5)
        raise TimeoutError(f"{topic}: {last} records, wanted {at_least} and quiet; log tail:\n{worker.log_tail()}")
    finally:
        await consumer.stop()


def _wait_until_quiet(worker: WorkerProcess, bootstrap: str, topic: str, at_least: int, timeout_s: float) -> None:
    """Until the topic holds `at_least` records and has not grown for 3 s (a cheap signal: offsets)."""
    asyncio.run(_quiet(worker, bootstrap, topic, at_least, timeout_s))


def _latest_values(admin, topic: str) -> tuple[int, dict[bytes, bytes]]:
    """(largest record value on a changelog, latest value per key, tombstones dropped)."""
    latest, largest = {}, 0
    for rec in admin.consume_all(topic, quiet_s=0.5, timeout_s=120):
        largest = max(largest, len(rec.value or b""))
        latest[rec.key] = rec.value
    return largest, {k: v for k, v in latest.items() if v}


def test_a_cx_slot_with_the_most_sessions_the_caps_allow(kafka_bootstrap, admin, unique, tmp_path):
    sessions = [f"session-{n:08d}-{'x' * 40}" for n in range(MAX_SLOT_IDS)]
    events = [{"ts": START_S + (n % 17000) / 1000, "session_id": s, "type": "complete", "cohort": "web",
               "view_id": f"{s}-view", "services": ["api"]} for n, s in enumerate(sessions)]
    closing = {"ts": START_S + 3 * WINDOW_S, "session_id": "later", "type": "page_view", "cohort": "web"}
    env = lens_env(kafka_bootstrap, unique, tmp_path / "data", **TIMING)
    worker = WorkerProcess(env, tmp_path / "worker.log").start()
    try:
        worker.wait_ready()
        asyncio.run(_produce(kafka_bootstrap, env["LENSBRIDGE_TOPIC_RUM"],
                             _arrays(events, 2) + [(2, orjson.dumps(closing))]))
        topic, merged = env["LENSBRIDGE_TOPIC_WINDOWS"], {}

        def out() -> bool:
            nonlocal merged
            merged, resent = merged_cx_windows(admin.consume_all(topic, quiet_s=0.5, timeout_s=60))
            assert resent == []
            return ("web", START_S) in merged

        worker.wait_for(out, 150, "the merged CX window")
        window = merged[("web", START_S)]
        assert (window["sessions"], window["completes"], window["abandons"]) == (MAX_SLOT_IDS, MAX_SLOT_IDS, 0)
        assert window["services"] == {"api": MAX_SLOT_IDS} and window["ids_over_cap"] == 0
        assert window["partitions"] == [2]
        assert worker.metric("lensbridge_events_total", 'lens="cx"') == len(events) + 1
        largest, _ = _latest_values(admin, f"{env['LENSBRIDGE_APP_ID']}-cx-state-changelog")
        # sessions, views (24 bytes each) and pairs as base64: ~2.7 MB, not the 13 MB of the ids
        assert 2_000_000 < largest < 3_500_000 < MAX_STATE_BYTES / 4
        worker.assert_alive()
    finally:
        worker.stop()


def test_a_correlator_with_ten_thousand_services(kafka_bootstrap, admin, unique, tmp_path):
    names = [f"service-{n:05d}" for n in range(SERVICES)]
    messages = []
    for w in range(SRE_WINDOWS + 1):  # the last window only moves the watermarks
        for p in range(4):
            events = [{"ts": START_S + w * WINDOW_S + (n % 1000) / 100, "service": name,
                       "latency_ms": 10.0 + n % 90, "status": 503 if n % 7 == 0 else 200}
                      for n, name in enumerate(names) if n % 4 == p]
            messages += _arrays(events, p)
    env = lens_env(kafka_bootstrap, unique, tmp_path / "data", **TIMING)
    worker = WorkerProcess(env, tmp_path / "worker.log").start()
    try:
        worker.wait_ready()
        asyncio.run(_produce(kafka_bootstrap, env["LENSBRIDGE_TOPIC_REQUESTS"], messages))
        expected = SERVICES * SRE_WINDOWS
        _wait_until_quiet(worker, kafka_bootstrap, env["LENSBRIDGE_TOPIC_WINDOWS"], expected, 300)
        merged = merged_sre_windows(admin.consume_all(env["LENSBRIDGE_TOPIC_WINDOWS"], quiet_s=0.5, timeout_s=120))
        for w in range(SRE_WINDOWS):
            for n, name in enumerate(names):
                window = merged[(name, START_S + w * WINDOW_S)]
                assert (window["requests"], window["errors"]) == (1, int(n % 7 == 0)), (name, w)
        # The correlator's write of the last release follows its merged windows.
        changelog = f"{env['LENSBRIDGE_APP_ID']}-joiner-state-changelog"
        _wait_until_quiet(worker, kafka_bootstrap, changelog, SERVICES, 120)
        largest, values = _latest_values(admin, changelog)
        parts = {k: orjson.loads(v) for k, v in values.items() if k.startswith(b"corr|sre|")}
        assert len(parts) == SERVICES
        whole = sum(len(orjson.dumps(p["cur"])) for p in parts.values())
        print(f"correlator state: {whole} bytes in {len(parts)} values, largest record {largest}")
        assert whole > MAX_STATE_BYTES  # what used to be one value, over the limit
        assert largest < 64 * 1024  # each subject's value, its previous part included
        worker.assert_alive()
    finally:
        worker.stop()
