"""LensRunner with fakes for the table, the outbox and the stream (no broker, no Faust).

The broker-backed behaviour (crashes, rebalances) is covered in tests/integration; these
tests pin down what the runner does when a rebalance lands in the middle of its awaits.
"""
from __future__ import annotations

import asyncio

import orjson

from tests.fakes import T0_S, FakeStream, request_event
from tests.unit.agents.builders import lens_runner


def test_flush_acks_only_after_state_is_written() -> None:
    async def scenario() -> None:
        runner, table, _ = lens_runner()
        stream = FakeStream()
        await runner.on_event(stream, request_event(0, 0, T0_S + 1))
        table.gate = asyncio.get_running_loop().create_future()
        await runner.flush(0)  # folds and returns; the writes are in flight
        await asyncio.sleep(0)
        assert stream.acked == [] and table.sent, "state is being written, input not yet acked"
        table.gate.set_result(None)
        await runner.settle()
        assert stream.acked == [0]

    asyncio.run(scenario())


def test_rebalance_during_a_flush_leaves_its_input_unacked() -> None:
    async def scenario() -> None:
        runner, table, outbox = lens_runner()
        stream = FakeStream()
        await runner.on_event(stream, request_event(0, 0, T0_S + 1))
        table.gate = asyncio.get_running_loop().create_future()
        await runner.flush(0)
        completion = runner.inflight[0]
        runner.forget()  # partitions revoked while the state write is in flight
        table.gate.set_result(None)
        await completion
        assert stream.acked == [], "the next owner must read this input again"
        assert outbox.summaries == [], "nothing is emitted for a partition no longer ours"

    asyncio.run(scenario())


def test_rebalance_during_a_tick_seek_does_not_break_the_tick() -> None:
    # CI found this: forget() ran while the timer awaited a seek, and the tick then looked up
    # an offset guard that no longer existed (KeyError), which took the worker down.
    async def scenario() -> None:
        holder: dict = {"revoke": False}

        async def seek_and_revoke(topic: str, partition: int, offset: int) -> None:
            if holder["revoke"]:
                holder["runner"].forget()

        runner, _, _ = lens_runner(seek=seek_and_revoke)
        holder["runner"] = runner
        stream = FakeStream()
        await runner.on_event(stream, request_event(1, 5, T0_S + 1))  # restored at offset -1: expects 0
        assert runner.positions.guards[1].seeking
        holder["revoke"] = True
        runner.test_clock.now_s += 1.0  # a seek is repeated after 1 s without progress
        await runner.tick({0, 1}, {0: 0, 1: 6})
        assert runner.states == {} and runner.positions.guards == {}, "no state reloaded by the stale tick"
        await runner.tick({0, 1}, {0: 0, 1: 6})  # the next tick works on the new assignment
        assert set(runner.states) == {0, 1}
        assert runner.positions.guards[1].next_offset == 0  # reloaded from the table, not the stale guard

    asyncio.run(scenario())


def test_rebalance_during_a_timed_flush_stops_its_completion() -> None:
    async def scenario() -> None:
        runner, table, _ = lens_runner(flush_interval_s=0.5)
        stream = FakeStream()
        await runner.on_event(stream, request_event(0, 0, T0_S + 1))
        runner.test_clock.now_s += 1.0
        table.gate = asyncio.get_running_loop().create_future()
        await runner.tick({0, 1}, {0: 1, 1: 0})  # the timed flush's writes are in flight
        completion = runner.inflight[0]
        runner.forget()
        writes_before = len(table.sent)
        table.gate.set_result(None)
        await completion
        assert stream.acked == []
        assert len(table.sent) == writes_before, "no writes after the revocation"

    asyncio.run(scenario())


def test_closed_window_is_sent_after_its_state_and_tombstoned_after_its_partial() -> None:
    async def scenario() -> None:
        runner, table, outbox = lens_runner()
        stream = FakeStream()
        await runner.on_event(stream, request_event(0, 0, T0_S + 1))
        await runner.flush(0)
        table.gate = asyncio.get_running_loop().create_future()
        await runner.on_event(stream, request_event(0, 1, T0_S + 200))  # moves the watermark past W0
        runner.test_clock.now_s = T0_S + 201.0  # ...once the clock is there too (it bounds the watermark)
        await runner.flush(0)
        await asyncio.sleep(0)
        assert [k for k, _ in outbox.summaries if "|_watermark|" not in k] == [], \
            "no partial before the state that produced it is durable"
        assert stream.acked == [0], "the first flush completed on its own"
        table.gate.set_result(None)
        table.gate = None
        await runner.settle()
        partials = [v for k, v in outbox.summaries if "|_watermark|" not in k]
        assert [(p["subject"], p["window_start"], p["requests"]) for p in partials] == [("checkout", T0_S, 1)]
        tombstones = [key for _, key, value in table.sent if value is None]
        assert len(tombstones) == 1 and tombstones[0].decode().endswith(f"|{T0_S}|checkout")
        assert stream.acked == [0, 1]

    asyncio.run(scenario())


def test_at_most_two_flushes_of_a_partition_are_in_flight() -> None:
    async def scenario() -> None:
        runner, table, _ = lens_runner()
        stream = FakeStream()
        table.gate = asyncio.get_running_loop().create_future()
        await runner.on_event(stream, request_event(0, 0, T0_S + 1))
        await runner.flush(0)  # first flush: in flight, the agent goes on
        await runner.on_event(stream, request_event(0, 1, T0_S + 2))
        second = asyncio.ensure_future(runner.flush(0))  # waits for the first one
        await asyncio.sleep(0.01)
        assert not second.done()
        table.gate.set_result(None)
        await second
        await runner.settle()
        assert stream.acked == [0, 1]

    asyncio.run(scenario())


def test_a_failed_write_surfaces_in_the_next_tick() -> None:
    async def scenario() -> None:
        runner, table, _ = lens_runner()
        stream = FakeStream()
        table.gate = asyncio.get_running_loop().create_future()
        await runner.on_event(stream, request_event(0, 0, T0_S + 1))
        await runner.flush(0)
        table.gate.set_exception(RuntimeError("broker said no"))
        await asyncio.sleep(0.01)
        try:
            await runner.tick({0}, {0: 1})
        except RuntimeError as exc:
            assert "broker said no" in str(exc)
        else:
            raise AssertionError("a failed flush must not pass silently")
        assert stream.acked == []

    asyncio.run(scenario())


def test_a_late_event_is_dead_lettered_with_its_own_message_bytes() -> None:
    async def scenario() -> None:
        runner, _, outbox = lens_runner()
        stream = FakeStream()
        await runner.on_event(stream, request_event(0, 0, T0_S + 1))
        await runner.on_event(stream, request_event(0, 1, T0_S + 200))  # closes W0 on partition 0
        runner.test_clock.now_s = T0_S + 202.0  # ...once the clock is there too (it bounds the watermark)
        await runner.flush(0)
        late = request_event(0, 3, T0_S + 5, service="search")
        await runner.on_event(stream, request_event(0, 2, T0_S + 201))
        await runner.on_event(stream, late)
        await runner.drain()
        assert outbox.dead_letters == [("late", 0, 3, late.message.value)]
        assert stream.acked == [0, 1, 2, 3]  # dead-lettered input is acked like the rest

    asyncio.run(scenario())


def test_no_ack_once_a_rebalance_started_even_before_forget() -> None:
    # Faust drops its ack bookkeeping for revoked partitions before our forget() runs; an ack
    # landing in between would sit below the next committed offset and stall commits for good.
    async def scenario() -> None:
        count = {"rebalances": 0}
        runner, table, _ = lens_runner(rebalances=lambda: count["rebalances"])
        stream = FakeStream()
        table.gate = asyncio.get_running_loop().create_future()
        await runner.on_event(stream, request_event(0, 0, T0_S + 1))
        await runner.flush(0)
        count["rebalances"] += 1  # the consumer thread began a rebalance; forget() not yet called
        table.gate.set_result(None)
        await runner.settle()
        assert stream.acked == []

    asyncio.run(scenario())


def test_a_flush_made_after_a_rebalance_began_still_acks() -> None:
    # Faust resumes delivery before it declares the rebalance over: flushes in that window
    # must ack, or their offsets stay unacked for good (CI: a stalled commit on a new worker).
    async def scenario() -> None:
        runner, _, _ = lens_runner(rebalances=lambda: 3)
        stream = FakeStream()
        await runner.on_event(stream, request_event(0, 0, T0_S + 1))
        await runner.drain()
        assert stream.acked == [0]

    asyncio.run(scenario())


def test_the_tick_commits_what_completed_flushes_made_durable() -> None:
    # Faust commits up to its first unacked offset and in CI stalled there for good while
    # the state held everything; the runner commits the state's durable position itself.
    async def scenario() -> None:
        runner, table, _ = lens_runner()
        stream = FakeStream()
        for offset in range(3):
            await runner.on_event(stream, request_event(0, offset, T0_S + 1 + offset))
        table.gate = asyncio.get_running_loop().create_future()
        await runner.flush(0)
        runner.test_clock.now_s += runner.settings.commit_interval_s + 0.1
        await runner.tick({0}, {0: 3})
        assert runner.test_commits == [], "nothing is committed while the state is in flight"
        table.gate.set_result(None)
        await runner.settle()
        await runner.tick({0}, {0: 3})
        assert runner.test_commits == [], "at most one commit per LENSBRIDGE_COMMIT_INTERVAL_SECONDS"
        runner.test_clock.now_s += runner.settings.commit_interval_s + 0.1
        await runner.tick({0}, {0: 3})
        assert runner.test_commits == [("requests", {0: 3})]

    asyncio.run(scenario())


def test_a_restored_partition_commits_what_its_state_already_holds() -> None:
    async def scenario() -> None:
        runner, _, _ = lens_runner()
        stream = FakeStream()
        for offset in range(5):
            await runner.on_event(stream, request_event(1, offset, T0_S + 1))
        await runner.drain()
        runner.forget()  # a rebalance: the partition comes back from the table at offset 4
        runner.test_commits.clear()
        await runner.on_event(stream, request_event(1, 2, T0_S + 1))  # re-read from an older commit
        runner.test_clock.now_s += runner.settings.commit_interval_s + 0.1
        await runner.tick({1}, {1: 5})
        assert runner.test_commits == [("requests", {1: 5})]

    asyncio.run(scenario())


def test_positions_learnt_before_a_rebalance_began_are_not_committed() -> None:
    async def scenario() -> None:
        count = {"rebalances": 0}
        runner, _, _ = lens_runner(rebalances=lambda: count["rebalances"])
        stream = FakeStream()
        await runner.on_event(stream, request_event(0, 0, T0_S + 1))
        await runner.on_event(stream, request_event(1, 0, T0_S + 1))
        await runner.drain()
        runner.test_commits.clear()
        count["rebalances"] += 1  # partition 0 may be another worker's by now
        await runner.commit_durable({0, 1})
        assert runner.test_commits == []

    asyncio.run(scenario())


def test_drain_commits_every_partition_it_flushed() -> None:
    # SIGTERM: the last commit before LeaveGroup must cover everything folded.
    async def scenario() -> None:
        runner, _, _ = lens_runner()
        stream = FakeStream()
        await runner.on_event(stream, request_event(0, 0, T0_S + 1))
        await runner.on_event(stream, request_event(1, 0, T0_S + 1))
        await runner.on_event(stream, request_event(1, 1, T0_S + 2))
        await runner.drain()
        assert runner.test_commits == [("requests", {0: 1, 1: 2})]

    asyncio.run(scenario())


def test_a_batched_message_of_late_events_is_one_dead_letter_carrying_its_bytes_once() -> None:
    async def scenario() -> None:
        runner, _, outbox = lens_runner()
        stream = FakeStream()
        await runner.on_event(stream, request_event(0, 0, T0_S + 1))
        await runner.on_event(stream, request_event(0, 1, T0_S + 200))  # closes W0 on partition 0
        runner.test_clock.now_s = T0_S + 203.0  # ...once the clock is there too (it bounds the watermark)
        await runner.flush(0)
        batch = [{"ts": T0_S + 2 + i / 1000, "service": "search", "latency_ms": 1.0, "status": 200}
                 for i in range(500)]
        batch.append({"ts": T0_S + 202, "service": "search", "latency_ms": 1.0, "status": 200})
        late = request_event(0, 2, T0_S)
        late.message.value = orjson.dumps(batch)
        await runner.on_event(stream, late)
        await runner.drain()
        assert outbox.dead_letters == [("late", 0, 2, late.message.value)]
        assert runner.metrics.late.labels("sre")._value.get() == 500
        assert stream.acked == [0, 1, 2]

    asyncio.run(scenario())
