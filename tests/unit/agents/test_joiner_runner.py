"""JoinerRunner's acks with fakes (no broker): in order, only once their writes landed."""
from __future__ import annotations

import asyncio

from tests.fakes import FakeStream, summary_event
from tests.unit.agents.builders import joiner_runner


def test_records_are_acked_in_order_once_their_writes_landed_even_with_two_ackers() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        joiner, stream = joiner_runner(), FakeStream()
        joiner.stream = stream
        writes = [loop.create_future() for _ in range(4)]
        for offset, future in enumerate(writes):
            joiner.unacked.append(([future], summary_event(offset), 0))
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
        joiner, stream = joiner_runner(), FakeStream()
        joiner.stream = stream
        write = loop.create_future()
        joiner.unacked.append(([write], summary_event(7), 0))
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
        joiner, stream = joiner_runner(rebalances=lambda: 1), FakeStream()
        joiner.stream = stream
        done = loop.create_future()
        done.set_result(None)
        joiner.unacked.append(([done], summary_event(3), 0))  # processed before the rebalance began
        joiner.unacked.append(([done], summary_event(4), 1))
        await joiner.ack_durable()
        assert stream.acked == [] and len(joiner.unacked) == 2

    asyncio.run(scenario())


def test_the_offset_after_the_last_durable_record_is_committed() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        joiner, stream = joiner_runner(), FakeStream()
        joiner.stream = stream
        landed, in_flight = loop.create_future(), loop.create_future()
        landed.set_result(None)
        joiner.unacked.append(([landed], summary_event(5), 0))
        joiner.unacked.append(([in_flight], summary_event(6), 0))
        await joiner.ack_durable(keep=10)  # as the agent does between records
        await joiner.commit_durable()
        topic = joiner.settings.topic_summaries
        assert joiner.test_commits == [(topic, {0: 6})], "record 6 is not durable yet"
        in_flight.set_result(None)
        await joiner.tick()  # settles; too soon to commit again
        assert joiner.test_commits == [(topic, {0: 6})]
        joiner.test_clock.now_s += joiner.settings.commit_interval_s + 0.1
        await joiner.tick()
        assert joiner.test_commits[-1] == (topic, {0: 7})

    asyncio.run(scenario())


def test_a_restored_joiner_commits_the_offset_its_table_holds() -> None:
    async def scenario() -> None:
        joiner = joiner_runner(data={b"next": b"42"})
        joiner.merger = joiner._restore()
        await joiner.commit_durable()
        assert joiner.test_commits == [(joiner.settings.topic_summaries, {0: 42})]

    asyncio.run(scenario())


def test_no_commit_once_a_rebalance_started() -> None:
    async def scenario() -> None:
        count = {"rebalances": 0}
        joiner, stream = joiner_runner(rebalances=lambda: count["rebalances"]), FakeStream()
        joiner.stream = stream
        done = asyncio.get_running_loop().create_future()
        done.set_result(None)
        joiner.unacked.append(([done], summary_event(3), 0))
        await joiner.ack_durable()
        count["rebalances"] += 1  # the summaries partition may be another worker's by now
        await joiner.commit_durable()
        assert joiner.test_commits == []

    asyncio.run(scenario())
