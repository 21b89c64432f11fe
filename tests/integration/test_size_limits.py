"""Every record fits its topic (topic side): the worker creates its topics with the
max.message.bytes of what it writes there, refuses to start on an existing topic that is too
small, a near-limit input message on each input topic with bad elements and the longest
subject names allowed travels through it with nothing refused by the broker, and a record the
broker refuses anyway becomes a dead letter of its own while the stream goes on."""
from __future__ import annotations

import asyncio
import random
import re
import subprocess
from collections import Counter

import orjson
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from app.core.sizes import MAX_SUBJECT_CHARS
from app.kafka.topic_sizes import describe_limits, record_limits
from app.lenses import lenses
from app.settings import Settings
from tests.integration import cx_data
from tests.integration.sre_data import START_S, compare, merged_sre_windows, truths
from tests.integration.worker_proc import WorkerProcess, lens_env

WINDOW_S, SLICE_S = 20, 5
TIMING = {"LENSBRIDGE_WINDOW_SECONDS": str(WINDOW_S), "LENSBRIDGE_GRACE_SECONDS": "2",
          "LENSBRIDGE_AVAILABILITY_SLICE_SECONDS": str(SLICE_S)}
MESSAGE_BYTES = 1_000_000  # under LENSBRIDGE_MAX_MESSAGE_BYTES (1 MiB) and the broker's default limit
SUBJECT = "svc-" + "\u00fc" * (MAX_SUBJECT_CHARS - 4)  # the longest name allowed, 508 bytes of UTF-8


async def _limits(bootstrap: str, topics: list[str]) -> dict[str, int | None]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return await describe_limits(admin, topics)
    finally:
        await admin.close()


async def _create_with_limit(bootstrap: str, topic: str, partitions: int, max_message_bytes: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        response = await admin.create_topics([NewTopic(topic, partitions, 1, topic_configs={
            "max.message.bytes": str(max_message_bytes)})])
        assert [code for _, code, *_ in response.topic_errors] == [0], response.topic_errors
    finally:
        await admin.close()


def _pack(bad: dict[int, dict], good_element) -> tuple[bytes, list[dict]]:
    """A JSON array of at most MESSAGE_BYTES: `bad` at their indexes, `good_element(index)`
    elsewhere, in time order (the watermark moves within a message, so a shuffled one has
    late events). Returns the bytes and the good elements."""
    elements, good, size = [], [], 2
    while True:
        index = len(elements)
        element = bad[index] if index in bad else good_element(index)
        encoded = orjson.dumps(element)
        if size + len(encoded) + 1 > MESSAGE_BYTES:
            break
        elements.append(element)
        size += len(encoded) + 1
        if index not in bad:
            good.append(element)
    assert set(bad) <= set(range(len(elements)))
    return orjson.dumps(elements), good


def _near_limit_message(rng: random.Random) -> tuple[bytes, list[dict], dict[int, str]]:
    """A JSON array of ~MESSAGE_BYTES: good events of SUBJECT over three windows or more, and bad
    elements among them (index -> reason), one of them ~300 KB on its own."""
    bad = {7: {"ts": START_S + 1, "service": SUBJECT, "latency_ms": "fast", "status": 200},
           300: {"service": SUBJECT, "latency_ms": 5.0, "status": 200},
           600: {"ts": START_S + 2, "service": SUBJECT, "latency_ms": "9" * 300_000, "status": 200},
           1000: {"ts": START_S + 3, "service": SUBJECT, "latency_ms": 3.0, "status": 99}}
    reasons = {7: "wrong_type", 300: "missing_field", 600: "wrong_type", 1000: "out_of_range"}
    raw, good = _pack(bad, lambda index: {
        "ts": round(START_S + index * 0.05, 6), "service": SUBJECT,
        "latency_ms": round(rng.lognormvariate(4, 0.6), 3), "status": 503 if rng.random() < 0.1 else 200})
    return raw, good, reasons


RUM_KINDS = ("page_view", "interactive", "web_vital", "rage_click", "complete")
COHORT = "cohort-" + "\u00e9" * (MAX_SUBJECT_CHARS - 7)  # the longest cohort name allowed
SERVICE = "dep-" + "x" * (MAX_SUBJECT_CHARS - 4)


def _near_limit_rum(rng: random.Random) -> tuple[bytes, list[dict], dict[int, str]]:
    """A JSON array of ~MESSAGE_BYTES of RUM events of COHORT in time order, with bad elements."""
    bad = {5: {"ts": START_S + 1, "session_id": "s-bad", "type": "teleport", "cohort": COHORT},
           400: {"ts": START_S + 2, "type": "page_view", "cohort": COHORT},
           800: {"ts": START_S + 3, "session_id": "s-bad", "type": "interactive", "cohort": COHORT,
                 "tti_ms": "1" * 200_000}}
    reasons = {5: "unknown_type", 400: "missing_field", 800: "wrong_type"}

    def good_element(index: int) -> dict:
        kind = RUM_KINDS[index % len(RUM_KINDS)]
        element = {"ts": round(START_S + index * 0.02, 6), "session_id": f"s{index // 10}",
                   "view_id": f"v{index // 5}", "type": kind, "cohort": COHORT, "services": [SERVICE]}
        if kind == "interactive":
            element["tti_ms"] = round(rng.lognormvariate(7, 0.5), 3)
        elif kind == "web_vital":
            element.update(name="LCP", value=round(rng.lognormvariate(7.5, 0.4), 3))
        return element

    raw, good = _pack(bad, good_element)
    return raw, good, reasons


def _dead_letters(raw: bytes, settings: Settings, lens: str) -> list[tuple]:
    """What the decoder rejects in `raw`, as `_shown` gives dead letters."""
    _, rejected = lenses(settings)[lens].decode(raw, START_S + 3600)
    return sorted(((bad.index, bad.reason, bad.summary is not None, len(bad.raw)) for bad in rejected), key=repr)


def _shown(letter: dict) -> tuple:
    return (letter["index"], letter["reason"], letter["summary"] is not None, letter["raw_length"])


def _covered(letters: list[dict], bad: dict[int, str]) -> set[int]:
    """The bad element indexes the dead letters stand for, each exactly once, with its reason
    (individual dead letters) or counted in its summary's reasons histogram."""
    covered = [d["index"] for d in letters if d["summary"] is None]
    assert all(bad[d["index"]] == d["reason"] for d in letters if d["summary"] is None)
    for d in letters:
        if d["summary"] is not None:
            indexes = [i for first, last in d["summary"]["indexes"] for i in range(first, last + 1)]
            assert len(indexes) == d["summary"]["count"]
            assert Counter(bad[i] for i in indexes) == Counter(d["summary"]["reasons"])
            covered += indexes
    assert len(covered) == len(set(covered))
    return set(covered)


def _refusals(worker: WorkerProcess) -> list[str]:
    return [line for line in worker.metrics().splitlines()
            if line.startswith("lensbridge_records_refused_total{") and not line.endswith(" 0.0")]


def test_created_topics_have_their_limits_and_a_near_limit_message_travels(kafka_bootstrap, admin, unique,
                                                                           tmp_path):
    env = lens_env(kafka_bootstrap, unique, tmp_path / "data", **TIMING)
    settings = Settings.from_env(env)
    worker = WorkerProcess(env, tmp_path / "worker.log").start()
    try:
        worker.wait_ready()
        wanted = record_limits(settings)  # output topics and Faust's changelogs
        assert asyncio.run(_limits(kafka_bootstrap, sorted(wanted))) == wanted
        raw, good, reasons = _near_limit_message(random.Random(5))
        rum_raw, rum_good, rum_reasons = _near_limit_rum(random.Random(6))
        assert all(MESSAGE_BYTES - 400 < len(message) <= MESSAGE_BYTES for message in (raw, rum_raw))
        admin.produce(env["LENSBRIDGE_TOPIC_REQUESTS"], [raw])
        admin.produce(env["LENSBRIDGE_TOPIC_RUM"], [(b"one-key", rum_raw)])
        truth, rum_truth = truths(good, WINDOW_S, SLICE_S), cx_data.truths(rum_good, WINDOW_S)
        assert len(truth) >= 3 and len(rum_truth) >= 1
        merged: dict = {}
        rum_merged: dict = {}

        def windows_out() -> bool:
            nonlocal merged, rum_merged
            records = admin.consume_all(env["LENSBRIDGE_TOPIC_WINDOWS"], quiet_s=0.3)
            merged, (rum_merged, _) = merged_sre_windows(records), cx_data.merged_cx_windows(records)
            return len(merged) >= len(truth) and len(rum_merged) >= len(rum_truth)

        worker.wait_for(windows_out, 180, f"{len(truth)} SRE and {len(rum_truth)} CX merged windows")
        assert compare(merged, truth) == []
        assert cx_data.compare(rum_merged, rum_truth) == []
        # Dead letters are sized by their cause: a bad element's own bytes, up to a per-message
        # budget, and one summary (whole message, indexes and reasons) for the rest.
        expected = {env["LENSBRIDGE_TOPIC_REQUESTS"]: _dead_letters(raw, settings, "sre"),
                    env["LENSBRIDGE_TOPIC_RUM"]: _dead_letters(rum_raw, settings, "cx")}
        letters = [orjson.loads(r.value) for r in admin.consume_all(
            env["LENSBRIDGE_TOPIC_DLQ"], min_count=sum(map(len, expected.values())), timeout_s=60)]
        by_topic = {topic: sorted((_shown(d) for d in letters if d["topic"] == topic), key=repr)
                    for topic in {d["topic"] for d in letters}}
        assert by_topic == expected
        for topic, bad in ((env["LENSBRIDGE_TOPIC_REQUESTS"], reasons), (env["LENSBRIDGE_TOPIC_RUM"], rum_reasons)):
            assert _covered([d for d in letters if d["topic"] == topic], bad) == set(bad)
        assert worker.metric("lensbridge_events_total", 'lens="sre"') == len(good)
        assert worker.metric("lensbridge_events_total", 'lens="cx"') == len(rum_good)
        assert _refusals(worker) == []  # nothing the worker wrote was refused
        worker.assert_alive()
    finally:
        worker.stop()


def test_existing_dead_letter_topic_too_small_stops_the_start(kafka_bootstrap, unique, tmp_path):
    env = lens_env(kafka_bootstrap, unique, tmp_path / "data")
    dlq = env["LENSBRIDGE_TOPIC_DLQ"]
    asyncio.run(_create_with_limit(kafka_bootstrap, dlq, 4, 100_000))
    worker = WorkerProcess(env, tmp_path / "worker.log").start()
    try:
        code = worker.proc.wait(timeout=90)
    except subprocess.TimeoutExpired:
        worker.kill()
        raise AssertionError(f"worker did not stop on a too-small {dlq}; log:\n{worker.log_tail()}") from None
    log = worker.log_tail(200)
    assert code == 2, log
    needed = record_limits(Settings.from_env(env))[dlq]
    assert re.search(rf"topic '{dlq}' has max\.message\.bytes=100000 but .* {needed} bytes", log), log
    assert f"--entity-name {dlq} --add-config max.message.bytes={needed}" in log, log


async def _alter_limit(bootstrap: str, topic: str, max_message_bytes: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic,
                                                  configs={"max.message.bytes": str(max_message_bytes)})])
    finally:
        await admin.close()


def test_a_record_the_broker_refuses_becomes_a_dead_letter_and_the_stream_goes_on(kafka_bootstrap, admin,
                                                                                  unique, tmp_path):
    env = lens_env(kafka_bootstrap, unique, tmp_path / "data", **TIMING)
    windows_topic = env["LENSBRIDGE_TOPIC_WINDOWS"]
    worker = WorkerProcess(env, tmp_path / "worker.log").start()
    try:
        worker.wait_ready()
        # Shrunk behind the worker's back (after its start check): a merged window (~10 KB) no
        # longer fits, and the broker answers MESSAGE_TOO_LARGE.
        asyncio.run(_alter_limit(kafka_bootstrap, windows_topic, 2_000))
        events = [{"ts": START_S + i * 0.01, "service": "svc-a", "latency_ms": 1.0 + i % 97, "status": 200}
                  for i in range(3_000)]  # windows [0, 20) and [20, 40) of svc-a
        admin.produce(env["LENSBRIDGE_TOPIC_REQUESTS"],
                      [orjson.dumps(events[i:i + 500]) for i in range(0, 3_000, 500)])
        labels = f'reason="message_too_large",topic="{windows_topic}"'
        worker.wait_for(lambda: worker.metric("lensbridge_records_refused_total", labels) >= 2, 120,
                        "two merged windows refused by the broker")
        letters = [orjson.loads(r.value) for r in admin.consume_all(env["LENSBRIDGE_TOPIC_DLQ"], min_count=2)]
        refused = [d for d in letters if d["reason"] == "record_too_large"]
        assert sorted(d["key"] for d in refused) == [f"sre|svc-a|{START_S}", f"sre|svc-a|{START_S + WINDOW_S}"]
        assert all(d["topic"] == windows_topic and "MessageSizeTooLargeError" in d["error"] for d in refused)
        assert worker.metric("lensbridge_records_refused_total", labels) == 2
        assert worker.metric("lensbridge_events_total", 'lens="sre"') == 3_000
        # the stream goes on: with the limit back, the next window is published
        asyncio.run(_alter_limit(kafka_bootstrap, windows_topic, 16 * 1024 * 1024))
        admin.produce(env["LENSBRIDGE_TOPIC_REQUESTS"], [orjson.dumps(
            [{"ts": START_S + 3 * WINDOW_S + 1, "service": "svc-a", "latency_ms": 5.0, "status": 200}])])

        def published() -> bool:
            return merged_sre_windows(admin.consume_all(windows_topic, quiet_s=0.3))
        worker.wait_for(published, 120, "a merged window once the limit is back")
        assert list(merged_sre_windows(admin.consume_all(windows_topic, quiet_s=0.3))) == [
            ("svc-a", START_S + 3 * WINDOW_S)]
        worker.assert_alive()
    finally:
        worker.stop()
