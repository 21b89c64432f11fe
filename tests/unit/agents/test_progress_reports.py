"""What the runners report for /healthz: input waiting, and durable progress (fakes, no broker)."""
from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from aiokafka.client import AIOKafkaClient
from aiokafka.cluster import ClusterMetadata

from app.faust import backoff as kafka_backoff
from app.observe.health import Progress
from tests.fakes import T0_S, FakeStream, request_event, summary_event
from tests.unit.agents.builders import joiner_runner, lens_runner


def _watch(runner) -> Progress:
    runner.progress = Progress(30, runner.clock)
    return runner.progress


def test_a_lens_stalls_while_its_flush_cannot_become_durable_and_recovers_after() -> None:
    async def scenario() -> None:
        runner, table, _ = lens_runner()
        progress, stream = _watch(runner), FakeStream()
        await runner.on_event(stream, request_event(0, 0, T0_S + 1))
        table.gate = asyncio.get_running_loop().create_future()  # the broker is away
        await runner.flush(0)
        runner.test_clock.now_s += 31
        assert progress.check().stalled and progress.check().reason.startswith("sre:")
        table.gate.set_result(None)  # back: the state write lands, the input is acked
        await runner.settle()
        assert stream.acked == [0] and not progress.check().stalled
        await runner.tick({0, 1}, {0: 1, 1: 0})  # caught up on both partitions
        runner.test_clock.now_s += 3600
        assert not progress.check().stalled, "an idle lens is not stalled"

    asyncio.run(scenario())


def test_unread_input_on_an_assigned_partition_counts_as_waiting() -> None:
    async def scenario() -> None:
        runner, _, _ = lens_runner()
        progress = _watch(runner)
        await runner.tick({0, 1}, {0: 0, 1: 500})  # partition 1 has 500 records nobody read yet
        runner.test_clock.now_s += 31
        assert progress.check().stalled
        await runner.tick({0}, {0: 0})  # partition 1 revoked: nothing of ours waits
        assert not progress.check().stalled

    asyncio.run(scenario())


def test_recovery_after_a_rebalance_is_not_a_stall() -> None:
    async def scenario() -> None:
        runner, table, _ = lens_runner()
        progress = _watch(runner)
        await runner.on_event(FakeStream(), request_event(0, 0, T0_S + 1))
        runner.forget()  # revoked: Faust recovers tables; ticks skip until it is done
        runner.test_clock.now_s += 120
        assert not progress.check().stalled
        joiner = joiner_runner()
        joiner.progress = progress
        progress.waiting("joiner", True)
        joiner.forget()
        assert not progress.check().stalled

    asyncio.run(scenario())


def test_the_joiner_reports_waiting_records_and_their_acks() -> None:
    async def scenario() -> None:
        joiner = joiner_runner()
        progress = Progress(30, joiner.clock)
        joiner.progress, joiner.stream = progress, FakeStream()
        await joiner.tick(end_offset=40)  # nothing read since the start: its position is not known yet
        joiner.test_clock.now_s += 31
        assert not progress.check().stalled, "a joiner idle since its start is not stalled"
        joiner.merger = joiner._restore()
        write = asyncio.get_running_loop().create_future()
        joiner.unacked.append(([write], summary_event(0), 0))
        progress.waiting("joiner", True)
        joiner.test_clock.now_s += 31
        assert progress.check().stalled
        write.set_result(None)
        await joiner.tick(end_offset=1)
        assert not progress.check().stalled
        joiner.test_clock.now_s += 31
        await joiner.tick(end_offset=5)  # records beyond what the joiner read: waiting again
        joiner.test_clock.now_s += 31
        assert progress.check().stalled

    asyncio.run(scenario())


@pytest.fixture
def paced(monkeypatch):
    monkeypatch.setattr(AIOKafkaClient, "_metadata_update", AIOKafkaClient._metadata_update)  # undone after
    pauses: list[float] = []

    async def pause(seconds: float) -> None:
        pauses.append(seconds)

    monkeypatch.setattr(kafka_backoff, "_pause", pause)
    kafka_backoff.install()
    kafka_backoff.install()  # idempotent: one pause per failure, not two
    return pauses


def test_a_failed_metadata_refresh_pauses_before_the_next(paced) -> None:
    # No broker known and no bootstrap connection: aiokafka's refresh fails at once.
    client = SimpleNamespace(cluster=ClusterMetadata(), _conns={})
    assert asyncio.run(AIOKafkaClient._metadata_update(client, ClusterMetadata(), set())) is False
    assert paced == [kafka_backoff.FAILED_REFRESH_PAUSE_S]
