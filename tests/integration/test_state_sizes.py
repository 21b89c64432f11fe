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

import orjson
from aiokafka import AIOKafkaProducer

from app.core.idset import MAX_SLOT_IDS
from app.faust_app import MAX_STATE_BYTES
from cx_data import START_S, merged_cx_windows
from sre_data import merged_sre_windows
from worker_proc import WorkerProcess, lens_env

WINDOW_S = 20
TIMING = {"LENSBRIDGE_WINDOW_SECONDS": str(WINDOW_S), "LENSBRIDGE_GRACE_SECONDS": "2"}
MESSAGE_EVENTS = 4_000  # events per JSON array: ~500 KB, under LENSBRIDGE_MAX_MESSAGE_BYTES
SERVICES, SRE_WINDOWS = 10_000, 9


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


def _largest_values(admin, topic: str) -> tuple[int, dict[bytes, int]]:
    """(largest record value on a changelog, latest size per key)."""
    latest, largest = {}, 0
    for rec in admin.consume_all(topic, quiet_s=0.5, timeout_s=120):
        size = len(rec.value or b"")
        largest = max(largest, size)
        latest[rec.key] = size
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
        largest, _ = _largest_values(admin, f"{env['LENSBRIDGE_APP_ID']}-cx-state-changelog")
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
        topic, merged = env["LENSBRIDGE_TOPIC_WINDOWS"], {}
        expected = SERVICES * SRE_WINDOWS

        def out() -> bool:
            nonlocal merged
            merged = merged_sre_windows(admin.consume_all(topic, quiet_s=1.0, timeout_s=120))
            return len([k for k in merged if k[1] < START_S + SRE_WINDOWS * WINDOW_S]) >= expected

        worker.wait_for(out, 300, f"{expected} merged SRE windows")
        for w in range(SRE_WINDOWS):
            for n, name in enumerate(names):
                window = merged[(name, START_S + w * WINDOW_S)]
                assert (window["requests"], window["errors"]) == (1, int(n % 7 == 0)), (name, w)
        changelog = f"{env['LENSBRIDGE_APP_ID']}-joiner-state-changelog"

        def written() -> bool:  # the last release's correlator write follows its merged windows
            _, sizes = _largest_values(admin, changelog)
            return sum(v for k, v in sizes.items() if k.startswith(b"corr|sre|")) > MAX_STATE_BYTES

        worker.wait_for(written, 120, "the correlator state of every service on the changelog")
        largest, sizes = _largest_values(admin, changelog)
        corr = {k: v for k, v in sizes.items() if k.startswith(b"corr|")}
        assert len([k for k in corr if k.startswith(b"corr|sre|")]) == SERVICES
        assert sum(corr.values()) > MAX_STATE_BYTES  # what used to be one value
        assert largest < 64 * 1024  # each subject's value, its previous part included
        worker.assert_alive()
    finally:
        worker.stop()
