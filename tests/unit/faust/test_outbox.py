"""The outbox's size handling: a record its topic refuses becomes a counted, logged
record_too_large dead letter, the send resolves, and other failures still propagate."""
import asyncio
import logging

import orjson
import pytest
from aiokafka.errors import KafkaTimeoutError, MessageSizeTooLargeError
from faust.exceptions import ProducerSendError
from prometheus_client import CollectorRegistry

from app.core.ingest.decode import RECORD_TOO_LARGE, Rejected
from app.core.sizes import BATCH_OVERHEAD_BYTES
from app.faust.outbox import BROKER_REFUSED, OVER_LIMIT, Outbox, is_size_error
from app.faust.store import StateTooLargeError, TableStore
from app.observe.metrics import Metrics
from tests.fakes import FakeTable


class FakeTopic:
    """A Faust topic: send_soon hands back a future the test resolves (or fails)."""

    def __init__(self, name: str, fail: BaseException | None = None):
        self.name, self.fail, self.sent = name, fail, []

    def get_topic_name(self) -> str:
        return self.name

    def send_soon(self, key, value, partition=None):
        future = asyncio.get_running_loop().create_future()
        self.sent.append((key, value, partition))
        if self.fail is not None:
            future.set_exception(self.fail)
        else:
            future.set_result(len(self.sent) - 1)
        return future


def _outbox(windows_fail=None, dlq_limit=2_000_000):
    topics = {name: FakeTopic(name) for name in ("s", "a", "d")}
    topics["w"] = FakeTopic("w", windows_fail)
    metrics = Metrics(CollectorRegistry())
    outbox = Outbox(summaries=topics["s"], windows=topics["w"], alerts=topics["a"], dlq=topics["d"],
                    limits={"s": 1_000_000, "w": 10_000, "a": 1_000_000, "d": dlq_limit},
                    metrics=metrics, clock=lambda: 1_700_000_000.0)
    return outbox, topics, metrics


def _refused(metrics, topic, reason):
    return metrics.registry.get_sample_value("lensbridge_records_refused_total", {"topic": topic, "reason": reason})


def test_record_over_the_topic_limit_is_not_sent_but_dead_lettered():
    async def run():
        outbox, topics, metrics = _outbox()
        big = {"subject": "svc", "blob": "x" * 20_000}
        assert await outbox.merged_window("sre|svc|0", big) is None
        assert topics["w"].sent == []
        [(key, value, _)] = topics["d"].sent
        record = orjson.loads(value)
        assert key is None and record["reason"] == RECORD_TOO_LARGE and record["topic"] == "w"
        assert record["key"] == "sre|svc|0" and "10000" in record["error"] and "sha256" in record["error"]
        assert _refused(metrics, "w", OVER_LIMIT) == 1
        small = {"subject": "svc"}
        await outbox.merged_window("sre|svc|60", small)  # processing goes on
        assert topics["w"].sent == [(b"sre|svc|60", orjson.dumps(small), None)]
    asyncio.run(run())


def test_record_at_the_limit_is_sent():
    async def run():
        outbox, topics, metrics = _outbox()
        value = {"blob": "x" * (10_000 - BATCH_OVERHEAD_BYTES - 20)}
        key = "k" * (10_000 - BATCH_OVERHEAD_BYTES - len(orjson.dumps(value)))
        await outbox.merged_window(key, value)
        assert len(topics["w"].sent) == 1 and topics["d"].sent == []
        await outbox.merged_window(key + "k", value)
        assert len(topics["w"].sent) == 1 and len(topics["d"].sent) == 1
    asyncio.run(run())


@pytest.mark.parametrize("error", [MessageSizeTooLargeError(),
                                   ProducerSendError("Error while sending")])
def test_broker_size_refusal_resolves_and_becomes_a_dead_letter(error, caplog):
    if isinstance(error, ProducerSendError):
        error.__cause__ = MessageSizeTooLargeError()
    assert is_size_error(error)

    async def run():
        outbox, topics, metrics = _outbox(windows_fail=error)
        with caplog.at_level(logging.ERROR, "lensbridge.outbox"):
            assert await outbox.merged_window("cx|c|0", {"subject": "c"}) is None
        [(_, value, _)] = topics["d"].sent
        assert orjson.loads(value)["reason"] == RECORD_TOO_LARGE
        assert "MessageSizeTooLargeError" in orjson.loads(value)["error"]
        assert _refused(metrics, "w", BROKER_REFUSED) == 1
        assert any("refused" in r.getMessage() for r in caplog.records)
    asyncio.run(run())


def test_other_send_failures_still_propagate():
    async def run():
        outbox, topics, metrics = _outbox(windows_fail=KafkaTimeoutError())
        with pytest.raises(KafkaTimeoutError):
            await outbox.merged_window("cx|c|0", {"subject": "c"})
        assert topics["d"].sent == []
    asyncio.run(run())


def test_a_dead_letter_is_cut_to_its_topics_limit_and_a_refused_refusal_stops(caplog):
    async def run():
        limit = 48 * 1024
        outbox, topics, metrics = _outbox(dlq_limit=limit)
        bad = Rejected("wrong_type", "bad", b"y" * 100_000)
        await outbox.dead_letter(bad, "requests", 1, 7, b"key", 1.0)
        [(_, value, _)] = topics["d"].sent
        record = orjson.loads(value)
        # Sized by construction: raw is cut to what the topic holds, the rest described.
        assert record["reason"] == "wrong_type" and record["raw_truncated"] is True
        assert record["raw_length"] == 100_000 and len(value) < limit
        assert not _refused(metrics, "d", OVER_LIMIT)
        outbox._limits["d"] = 10  # now not even the envelope fits: logged, counted, no loop
        with caplog.at_level(logging.CRITICAL, "lensbridge.outbox"):
            await outbox.dead_letter(bad, "requests", 1, 8, b"key", 1.0)
        assert len(topics["d"].sent) == 1 and _refused(metrics, "d", OVER_LIMIT) == 2
    asyncio.run(run())


def test_state_value_over_the_changelog_limit_raises_before_anything_is_written():
    async def run():
        table = FakeTable()
        store = TableStore(table, limit=10_000)
        with pytest.raises(StateTooLargeError, match="'big'.*over the changelog limit of 10000"):
            store.write(0, {"small": b"1", "big": b"x" * 10_000})
        assert table.data == {} and table.sent == []
        store.write(0, {"small": b"1"})
        assert table.data == {b"small": b"1"} and table.sent == [(0, b"small", b"1")]
    asyncio.run(run())
