"""Bench data: simulator request events written to fresh 4-partition topics in three framings.

- `single`: one JSON object per message, keyed by service (as `lensbridge replay` keys them);
- `array`: JSON arrays of `batch` consecutive events, message i on partition i % partitions;
- `ndjson`: the same batches as NDJSON (one event per line).

The events come from `scenarios/two_hours.json` (7 services, peak and off-peak, incidents)
with its request rate scaled so the scenario holds enough events; timestamps end just
before now, so windowed baselines that expire on wall-clock time keep every window.
The single topic holds the first `events` events, the batched ones the first
`batched_events` (more, because batched consumers are ~10x faster).
"""
from __future__ import annotations

import asyncio
import dataclasses
import math
import time
from dataclasses import dataclass

import orjson
from aiokafka import AIOKafkaProducer

from app.bench.kafka_admin import ROOT, create_topics
from app.simulate import generate_lists, load_scenario

SCENARIO = ROOT / "scenarios" / "two_hours.json"
PRODUCE_CHUNK = 2000


@dataclass(frozen=True)
class Dataset:
    single: str
    array: str
    ndjson: str
    events: int  # in the single topic
    batched_events: int  # in each batched topic
    batch: int
    single_bytes: int
    first_ts_s: float
    last_ts_s: float

    def topics(self) -> list[str]:
        return [self.single, self.array, self.ndjson]


def request_events(count: int, seed: int = 1, now_s: float | None = None) -> list[dict]:
    """`count` request events from the two-hour scenario, sorted by ts, ending before now."""
    scenario = load_scenario(str(SCENARIO))
    per_window = scenario.requests_per_window
    # The scenario's profile averages ~0.74 of requests_per_window per window: scale with margin.
    windows = scenario.duration_windows
    scale = max(1.0, 1.5 * count / (0.74 * per_window * windows))
    scenario = dataclasses.replace(scenario, requests_per_window=math.ceil(per_window * scale))
    now_s = time.time() if now_s is None else now_s
    start = int(now_s - scenario.window_s * (windows + 2)) // scenario.window_s * scenario.window_s
    requests, _ = generate_lists(scenario, start, seed)
    if len(requests) < count:
        raise RuntimeError(f"the scenario gave {len(requests)} requests, fewer than {count}")
    return requests[:count]


def frame_batches(encoded: list[bytes], batch: int, framing: str) -> list[bytes]:
    """Group encoded events into messages: a JSON array or NDJSON of `batch` events each."""
    out = []
    for i in range(0, len(encoded), batch):
        chunk = encoded[i:i + batch]
        out.append(b"[" + b",".join(chunk) + b"]" if framing == "array" else b"\n".join(chunk))
    return out


async def _produce(kafka: dict, topic: str, messages: list[tuple[bytes | None, bytes, int | None]]) -> None:
    producer = AIOKafkaProducer(**kafka, acks=1, linger_ms=20,
                                max_batch_size=1 << 20, max_request_size=8 << 20)
    await producer.start()
    try:
        for i in range(0, len(messages), PRODUCE_CHUNK):
            futures = [await producer.send(topic, value, key=key, partition=partition)
                       for key, value, partition in messages[i:i + PRODUCE_CHUNK]]
            await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def build_dataset(kafka: dict, prefix: str, events: int, batched_events: int,
                        batch: int = 100, partitions: int = 4) -> Dataset:
    total = max(events, batched_events)
    requests = request_events(total)
    encoded = [orjson.dumps(e) for e in requests]
    ds = Dataset(single=f"{prefix}-single", array=f"{prefix}-array", ndjson=f"{prefix}-ndjson",
                 events=events, batched_events=batched_events, batch=batch,
                 single_bytes=sum(len(b) for b in encoded[:events]),
                 first_ts_s=requests[0]["ts"], last_ts_s=requests[total - 1]["ts"])
    await create_topics(kafka, ds.topics(), partitions)
    single = [(requests[i]["service"].encode(), encoded[i], None) for i in range(events)]
    await _produce(kafka, ds.single, single)
    for framing, topic in (("array", ds.array), ("ndjson", ds.ndjson)):
        messages = frame_batches(encoded[:batched_events], batch, framing)
        await _produce(kafka, topic, [(None, m, i % partitions) for i, m in enumerate(messages)])
    return ds
