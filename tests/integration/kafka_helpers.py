"""Async helpers for integration tests against a real broker.

Import as `from tests.integration import kafka_helpers` (tests/integration is a package, so
pytest does not put it on sys.path). Tests are sync and wrap calls in `asyncio.run(...)`.
"""
from __future__ import annotations

import asyncio
import time
from typing import Iterable, NamedTuple

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import for_code

TOPIC_ALREADY_EXISTS = 36


class Record(NamedTuple):
    """One consumed message; unpacks as (key, value, partition, offset)."""

    key: bytes | None
    value: bytes | None
    partition: int
    offset: int


async def create_topics(bootstrap: str, names: Iterable[str], partitions: int = 4) -> None:
    """Creates topics (replication 1) and waits until each partition has a leader."""
    names = list(names)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        response = await admin.create_topics(
            [NewTopic(n, num_partitions=partitions, replication_factor=1) for n in names]
        )
        for topic, code, *rest in response.topic_errors:
            if code not in (0, TOPIC_ALREADY_EXISTS):
                raise for_code(code)(f"create topic {topic}: {rest[0] if rest else ''}")
        await _wait_for_leaders(admin, names, partitions)
    finally:
        await admin.close()


async def _wait_for_leaders(admin: AIOKafkaAdminClient, names: list[str], partitions: int,
                            timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        topics = await admin.describe_topics(names)
        ready = [t for t in topics if t["error_code"] == 0 and len(t["partitions"]) == partitions
                 and all(p["leader"] >= 0 for p in t["partitions"])]
        if len(ready) == len(names):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"topics not ready after {timeout_s}s: {topics}")
        await asyncio.sleep(0.1)


async def partition_count(bootstrap: str, topic: str, timeout_s: float = 15.0, security: dict | None = None) -> int:
    """Number of partitions of `topic`, waiting for it to exist (auto-created topics lag).
    `security`: aiokafka security options for a secured broker (app.kafka.client.security_options)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **(security or {}))
    await admin.start()
    try:
        deadline = time.monotonic() + timeout_s
        described: dict = {}
        while True:
            # Listed first: a metadata request naming a missing topic makes a broker with
            # auto.create.topics.enable create it with default configs, before the worker
            # could create it with its own (and the worker then refuses the too-small topic).
            if topic in await admin.list_topics():
                (described,) = await admin.describe_topics([topic])
                if described["error_code"] == 0 and described["partitions"]:
                    return len(described["partitions"])
            if time.monotonic() > deadline:
                raise TimeoutError(f"topic {topic} not found: {described}")
            await asyncio.sleep(0.1)
    finally:
        await admin.close()


async def produce(bootstrap: str, topic: str,
                  messages: Iterable[tuple[bytes | None, bytes] | bytes]) -> None:
    """Sends bytes or (key, value) pairs and waits until the broker acknowledged all."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        futures = []
        for m in messages:
            key, value = m if isinstance(m, tuple) else (None, m)
            futures.append(await producer.send(topic, value, key=key))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def consume_all(bootstrap: str, topic: str, *, min_count: int = 0,
                      quiet_s: float = 1.0, timeout_s: float = 30.0,
                      security: dict | None = None) -> list[Record]:
    """Reads a topic from the beginning until it is quiet.

    Quiet means: every partition read up to its end offset (taken at the start),
    at least `min_count` records seen, and nothing new for `quiet_s`. Raises
    TimeoutError after `timeout_s`. No consumer group: nothing is committed.
    Records come sorted by (partition, offset).
    """
    deadline = time.monotonic() + timeout_s
    n = await partition_count(bootstrap, topic, timeout_s=timeout_s, security=security)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, **(security or {}),
                                enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(n)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        records: list[Record] = []
        last_new = time.monotonic()
        while True:
            batch = await consumer.getmany(*tps, timeout_ms=200)
            for msgs in batch.values():
                records.extend(Record(m.key, m.value, m.partition, m.offset) for m in msgs)
                if msgs:
                    last_new = time.monotonic()
            caught_up = all([await consumer.position(tp) >= end[tp] for tp in tps])
            if (caught_up and len(records) >= min_count
                    and time.monotonic() - last_new >= quiet_s):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topic}: {len(records)} records after {timeout_s}s, "
                                   f"wanted >= {min_count}")
        return sorted(records, key=lambda r: (r.partition, r.offset))
    finally:
        await consumer.stop()
