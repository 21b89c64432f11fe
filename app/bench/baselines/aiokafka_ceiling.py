"""Row 5, the physical ceiling of one Python process: aiokafka `getmany` + orjson + fastdigest.

No framework, no state store, no commits: per fetched batch, decode every message, group
the events by (window, service) and fold each group into its digest with one Rust call.
"""
from __future__ import annotations

import asyncio

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from fastdigest import TDigest

from app.bench.baselines.common import Meter, parser, security


def decode(value: bytes, framing: str) -> list:
    if framing == "ndjson":
        return [orjson.loads(line) for line in value.split(b"\n") if line]
    obj = orjson.loads(value)
    return obj if type(obj) is list else [obj]


class Folder:
    """(partition, window, service) -> [requests, errors, digest], folded per batch."""

    def __init__(self, window_s: int, compression: int):
        self.window_s, self.compression = window_s, compression
        self.state: dict[tuple, list] = {}

    def fold(self, partition: int, events: list[dict]) -> None:
        groups: dict[tuple, list] = {}
        window_s = self.window_s
        for e in events:
            key = (partition, int(e["ts"] // window_s) * window_s, e["service"])
            group = groups.get(key)
            if group is None:
                group = groups[key] = [[], 0]
            group[0].append(e["latency_ms"])
            if e["status"] >= 500:
                group[1] += 1
        for key, (latencies, errors) in groups.items():
            acc = self.state.get(key)
            if acc is None:
                acc = self.state[key] = [0, 0, TDigest(max_centroids=self.compression)]
            acc[0] += len(latencies)
            acc[1] += errors
            acc[2].batch_update(latencies)


async def run(args) -> None:
    consumer = AIOKafkaConsumer(bootstrap_servers=args.bootstrap, **security(), group_id=None,
                                enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    meter, folder = Meter(args.events * args.passes), Folder(args.window_s, args.compression)
    in_pass = 0  # events of the current pass over the topic
    try:
        await consumer._client.force_metadata_update()  # noqa: SLF001 - aiokafka has no public refresh
        tps = [TopicPartition(args.topic, p) for p in sorted(consumer.partitions_for_topic(args.topic))]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        while not meter.done:
            batch = await consumer.getmany(timeout_ms=500)
            for tp, messages in batch.items():
                events = []
                for m in messages:
                    events.extend(decode(m.value, args.framing))
                folder.fold(tp.partition, events)
                in_pass += len(events)
                if meter.add(len(events)):
                    break
            if in_pass >= args.events and not meter.done:  # the topic is read: read it again
                in_pass = 0
                await consumer.seek_to_beginning(*tps)
    finally:
        await consumer.stop()
    meter.report(open_slots=len(folder.state))


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--framing", choices=("single", "array", "ndjson"), default="single")
    p.add_argument("--passes", type=int, default=1, help="read the topic (holding --events) this often")
    asyncio.run(run(p.parse_args()))


if __name__ == "__main__":
    main()
