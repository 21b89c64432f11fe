"""Topic helpers for the bench: create, delete, list, read, and bytes on the broker's disk."""
from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Iterable

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

TOPIC_ALREADY_EXISTS = 36
ROOT = Path(__file__).resolve().parents[2]


async def create_topics(kafka: dict, names: Iterable[str], partitions: int = 4) -> None:
    names = list(names)
    admin = AIOKafkaAdminClient(**kafka)
    await admin.start()
    try:
        response = await admin.create_topics([NewTopic(n, partitions, 1) for n in names])
        failed = [t for t in response.topic_errors if t[1] not in (0, TOPIC_ALREADY_EXISTS)]
        if failed:
            raise RuntimeError(f"cannot create topics: {failed}")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            described = await admin.describe_topics(names)
            if all(t["error_code"] == 0 and len(t["partitions"]) == partitions
                   and all(p["leader"] >= 0 for p in t["partitions"]) for t in described):
                return
            await asyncio.sleep(0.1)
        raise TimeoutError(f"topics without leaders after 15 s: {names}")
    finally:
        await admin.close()


async def list_topics(kafka: dict) -> list[str]:
    admin = AIOKafkaAdminClient(**kafka)
    await admin.start()
    try:
        return await admin.list_topics()
    finally:
        await admin.close()


async def delete_topics(kafka: dict, names: Iterable[str]) -> None:
    names = [n for n in names if n]
    if not names:
        return
    admin = AIOKafkaAdminClient(**kafka)
    await admin.start()
    try:
        present = set(await admin.list_topics())
        doomed = [n for n in names if n in present]
        if doomed:
            await admin.delete_topics(doomed)
    finally:
        await admin.close()


async def end_offsets(kafka: dict, topic: str) -> dict[int, int]:
    consumer = AIOKafkaConsumer(**kafka, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        if not parts:
            # the topic may be new to this client; aiokafka has no public metadata refresh
            await consumer._client.force_metadata_update()  # noqa: SLF001
            parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        ends = await consumer.end_offsets(tps) if tps else {}
        return {tp.partition: offset for tp, offset in ends.items()}
    finally:
        await consumer.stop()


async def read_all(kafka: dict, topic: str, timeout_s: float = 60.0) -> list:
    """Every record of `topic` up to its current end (ConsumerRecords: key, value, timestamp...)."""
    consumer = AIOKafkaConsumer(**kafka, group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()  # noqa: SLF001 - aiokafka has no public refresh
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not tps:
            return []
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        records: list = []
        deadline = time.monotonic() + timeout_s
        while any([await consumer.position(tp) < ends[tp] for tp in tps]):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topic}: read {len(records)} records in {timeout_s} s, not at the end")
            for msgs in (await consumer.getmany(*tps, timeout_ms=200)).values():
                records.extend(msgs)
        return records
    finally:
        await consumer.stop()


def broker_data_dir() -> Path | None:
    """The local broker's log dir (scripts/kafka.sh layout), if this machine runs it."""
    explicit = os.environ.get("KAFKA_DATA_DIR")
    port = os.environ.get("KAFKA_PORT", "9092")
    path = Path(explicit) if explicit else ROOT / ".kafka" / ("data" if port == "9092" else f"data-{port}")
    if not path.is_absolute():
        path = ROOT / path
    return path if path.is_dir() else None


def topic_disk_bytes(topic: str, data_dir: Path | None = None) -> int | None:
    """Bytes of the topic's log segments on the local broker's disk (None if not local).

    Segment files hold exactly what the broker appended (record batches with their
    headers); index files are preallocated and not counted.
    """
    data_dir = data_dir or broker_data_dir()
    if data_dir is None:
        return None
    total, found = 0, False
    for part in data_dir.glob(f"{topic}-[0-9]*"):
        if part.name.rsplit("-", 1)[0] != topic:
            continue
        found = True
        total += sum(f.stat().st_size for f in part.glob("*.log"))
    return total if found else None


async def payload_bytes(kafka: dict, topic: str) -> tuple[int, int]:
    """(records, key + value bytes) of a topic, read from the broker."""
    records = await read_all(kafka, topic, timeout_s=300)
    return len(records), sum(len(r.key or b"") + len(r.value or b"") for r in records)
