"""The joiner dead-letters summaries records it cannot take (someone else wrote to the topic)
instead of failing on them; the good records around them are merged and everything is acked."""
from __future__ import annotations

import asyncio

import orjson
from prometheus_client import CollectorRegistry

from agents.joiner import JoinerRunner
from app.faust.store import TableStore
from app.lenses import lenses
from app.observe.metrics import Metrics
from app.settings import Settings
from tests.fakes import FakeOutbox, FakeStream, FakeTable, summary_event

JUNK = [
    (b"not json at all", "not_json"),
    (None, "not_json"),  # a tombstone
    (b"[1, 2]", "not_object"),
    (b'{"lens": "sre"}', "wrong_type"),
    (b'{"lens": "nope", "type": "watermark", "partition": 0, "watermark": 5}', "out_of_range"),
    (b'{"lens": "sre", "type": "watermark", "partition": 0, "watermark": "soon"}', "wrong_type"),
    (b'{"lens": "sre", "type": "watermark", "partition": [], "watermark": 5}', "wrong_type"),
    (b'{"lens": "cx", "subject": "all", "window_start": "0", "window_end": 60, "partition": 0}', "wrong_type"),
    (b'{"lens": {"a": 1}}', "out_of_range"),
]


def test_junk_records_are_dead_lettered_and_good_ones_merged() -> None:
    async def scenario() -> None:
        cfg = Settings.from_env({}).replace(partitions=2)
        registry, outbox, table = CollectorRegistry(), FakeOutbox(), FakeTable()

        async def no_seek(topic: str, partition: int, offset: int) -> None:
            return None

        async def commit(topic: str, positions: dict[int, int]) -> None:
            return None

        joiner = JoinerRunner(lenses(cfg), cfg, TableStore(table), outbox, Metrics(registry), lambda: 0.0,
                              no_seek, commit=commit)
        stream, offset = FakeStream(), 0
        for value, _ in JUNK:
            good = {"lens": "sre", "type": "watermark", "partition": 0, "watermark": 100.0 + offset}
            for record in (orjson.dumps(good), value):
                await joiner.on_event(stream, summary_event(offset, record))
                offset += 1
        await joiner.ack_durable()
        assert stream.acked == list(range(offset))
        assert joiner.positions.durable[0][0] == offset
        assert [(reason, off, raw) for reason, _, off, raw in outbox.dead_letters] == [
            (reason, 2 * i + 1, value or b"") for i, (value, reason) in enumerate(JUNK)]
        assert joiner.merger.watermarks == {"sre": {0: 100.0 + offset - 2}}
        assert registry.get_sample_value("lensbridge_invalid_events_total",
                                         {"topic": "lens-summaries", "reason": "wrong_type"}) == 4

    asyncio.run(scenario())
