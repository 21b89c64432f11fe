"""JoinerRunner's acks with fakes (no broker): in order, only once their writes landed."""
from __future__ import annotations

import asyncio
from types import SimpleNamespace

from prometheus_client import CollectorRegistry

from agents.joiner import JoinerRunner
from app.lenses import lenses
from app.metrics import Metrics
from app.settings import Settings
from app.store import TableStore


class FakeStream:
    def __init__(self) -> None:
        self.acked: list[int] = []

    async def ack(self, event) -> None:
        await asyncio.sleep(0)  # Faust's ack may yield: another acker could run meanwhile
        self.acked.append(event.message.offset)


def _joiner(rebalances=lambda: 0) -> JoinerRunner:
    cfg = Settings.from_env({})

    async def no_seek(topic: str, partition: int, offset: int) -> None:
        return None

    return JoinerRunner(lenses(cfg), cfg, TableStore(SimpleNamespace(data={})), outbox=None,
                        metrics=Metrics(CollectorRegistry()), clock=lambda: 0.0, seek=no_seek,
                        rebalances=rebalances)


def _event(offset: int) -> SimpleNamespace:
    return SimpleNamespace(message=SimpleNamespace(offset=offset))


def test_records_are_acked_in_order_once_their_writes_landed_even_with_two_ackers() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        joiner, stream = _joiner(), FakeStream()
        joiner.stream = stream
        writes = [loop.create_future() for _ in range(4)]
        for offset, future in enumerate(writes):
            joiner.unacked.append(([future], _event(offset), 0))
        writes[1].set_result(None)
        await joiner.ack_durable(keep=10)
        assert stream.acked == [], "record 0's write has not landed: nothing after it is acked"
        for future in writes[:3]:
            if not future.done():
                future.set_result(None)
        await asyncio.gather(joiner.ack_durable(keep=10), joiner.ack_durable(keep=10))  # agent + timer
        assert stream.acked == [0, 1, 2]
        writes[3].set_result(None)
        await joiner.ack_durable()
        assert stream.acked == [0, 1, 2, 3] and not joiner.unacked

    asyncio.run(scenario())


def test_a_rebalance_drops_unacked_records_without_acking_them() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        joiner, stream = _joiner(), FakeStream()
        joiner.stream = stream
        write = loop.create_future()
        joiner.unacked.append(([write], _event(7), 0))
        settling = asyncio.ensure_future(joiner.ack_durable())
        await asyncio.sleep(0)
        joiner.forget()
        write.set_result(None)
        await settling
        assert stream.acked == []

    asyncio.run(scenario())


def test_no_ack_once_a_rebalance_started() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        joiner, stream = _joiner(rebalances=lambda: 1), FakeStream()
        joiner.stream = stream
        done = loop.create_future()
        done.set_result(None)
        joiner.unacked.append(([done], _event(3), 0))  # processed before the rebalance began
        joiner.unacked.append(([done], _event(4), 1))
        await joiner.ack_durable()
        assert stream.acked == [] and len(joiner.unacked) == 2

    asyncio.run(scenario())
