"""The lens agent's per-message safety net: a message that makes decoding or folding raise is
dead-lettered as processing_error, acked in order, and every other message's events still count."""
from __future__ import annotations

import asyncio
import dataclasses
import logging

import orjson
from prometheus_client import CollectorRegistry

from agents import safety
from agents.lens import LensRunner
from app.core.windows.partition import meta_key, slot_key
from app.faust.store import TableStore
from app.observe.metrics import Metrics
from app.settings import Settings
from tests.fakes import T0_S, FakeOutbox, FakeStream, FakeTable, request_event

DECODE_POISON = b"POISON: the decoder raises on this"
FOLD_POISON_MS = 666.0  # an event with this latency makes the accumulator raise mid-batch


def _poisoned_runner(table: FakeTable | None = None):
    """A runner whose lens raises on DECODE_POISON (decode) and on FOLD_POISON_MS (fold)."""
    from app.lenses import sre_lens

    cfg = Settings.from_env({}).replace(partitions=2, flush_events=1_000_000)
    lens = sre_lens(cfg)
    real_decode, real_fold = lens.decode, lens.spec.fold

    def decode(raw, now_s):
        if raw == DECODE_POISON:
            raise KeyError("a decoder bug")
        return real_decode(raw, now_s)

    def fold(acc, events):
        for event in events:  # half the batch goes in before the poison raises
            if event.latency_ms == FOLD_POISON_MS:
                raise ZeroDivisionError("an accumulator bug")
            real_fold(acc, [event])

    lens = dataclasses.replace(lens, decode=decode, spec=dataclasses.replace(lens.spec, fold=fold))
    registry, outbox, table = CollectorRegistry(), FakeOutbox(), table or FakeTable()

    async def no_seek(topic: str, partition: int, offset: int) -> None:
        return None

    async def commit(topic: str, positions: dict[int, int]) -> None:
        return None

    runner = LensRunner(lens, cfg, TableStore(table), outbox, Metrics(registry), lambda: T0_S + 5.0, no_seek,
                        commit=commit)
    return runner, table, outbox, registry


def _message(offset: int, value: bytes):
    event = request_event(0, offset, T0_S + 1)
    event.message.value = value
    return event


def _requests(table: FakeTable, service: str = "checkout") -> int:
    raw = table.data[slot_key("sre", 0, T0_S, service).encode()]
    return orjson.loads(raw)["acc"]["requests"]


def _invalid(registry: CollectorRegistry, reason: str) -> float:
    return registry.get_sample_value("lensbridge_invalid_events_total", {"topic": "requests", "reason": reason}) or 0


def _poison_stream():
    fold_poison = orjson.dumps([{"ts": T0_S + 2, "service": "checkout", "latency_ms": 5, "status": 200},
                                {"ts": T0_S + 2, "service": "checkout", "latency_ms": FOLD_POISON_MS,
                                 "status": 200}])
    return [request_event(0, 0, T0_S + 1), _message(1, DECODE_POISON), request_event(0, 2, T0_S + 2),
            _message(3, fold_poison), request_event(0, 4, T0_S + 3, service="search"), _message(5, DECODE_POISON),
            request_event(0, 6, T0_S + 4)], fold_poison


def test_poison_messages_are_dead_lettered_and_the_rest_is_counted(caplog) -> None:
    async def scenario() -> None:
        runner, table, outbox, registry = _poisoned_runner()
        stream = FakeStream()
        events, fold_poison = _poison_stream()
        safety._logged.clear()
        with caplog.at_level(logging.ERROR, logger="lensbridge.safety"):
            for event in events:
                await runner.on_event(stream, event)
            await runner.drain()
        assert [(reason, offset, raw) for reason, _, offset, raw in outbox.dead_letters] == [
            ("processing_error", 1, DECODE_POISON), ("processing_error", 5, DECODE_POISON),
            ("processing_error", 3, fold_poison)]
        assert _invalid(registry, "processing_error") == 3
        assert stream.acked == list(range(7)), "acked in order with the rest"
        assert runner.positions.durable[0][0] == 7, "the durable position passes the poison"
        assert orjson.loads(table.data[meta_key("sre", 0).encode()])["offset"] == 6
        # Offsets 0, 2, 6 on checkout (message 3 contributes nothing, not even its good event).
        assert _requests(table) == 3 and _requests(table, "search") == 1
        assert registry.get_sample_value("lensbridge_events_total", {"lens": "sre"}) == 4
        # One log per exception type and location, however often it happens.
        assert len([r for r in caplog.records if "KeyError" in r.getMessage()]) == 1
        assert len([r for r in caplog.records if "ZeroDivisionError" in r.getMessage()]) == 1

    asyncio.run(scenario())


def test_the_error_text_names_the_exception_and_where_it_was_raised() -> None:
    async def scenario() -> None:
        runner, _, outbox, _ = _poisoned_runner()
        captured = []
        dead_letter = outbox.dead_letter
        outbox.dead_letter = lambda bad, *args: captured.append(bad) or dead_letter(bad, *args)
        await runner.on_event(FakeStream(), _message(0, DECODE_POISON))
        await runner.drain()
        (bad,) = captured
        assert bad.reason == "processing_error" and bad.raw == DECODE_POISON and bad.index is None
        assert "KeyError during sre lens decode at test_lens_safety.py:" in bad.error
        assert "a decoder bug" in bad.error

    asyncio.run(scenario())


def test_a_restart_skips_what_was_handled_and_never_counts_twice() -> None:
    async def scenario() -> None:
        runner, table, _, _ = _poisoned_runner()
        events, _ = _poison_stream()
        for event in events:
            await runner.on_event(FakeStream(), event)
        await runner.drain()
        # A new worker restores the table; Kafka hands out everything again (the commit was lost).
        again, _, outbox, registry = _poisoned_runner(table)
        stream = FakeStream()
        for event in events:
            await again.on_event(stream, event)
        await again.drain()
        assert stream.acked == list(range(7)) and outbox.dead_letters == []
        assert _requests(table) == 3 and _requests(table, "search") == 1
        assert (registry.get_sample_value("lensbridge_events_total", {"lens": "sre"}) or 0) == 0

    asyncio.run(scenario())


def test_a_poison_fold_in_a_later_flush_keeps_the_earlier_flushes() -> None:
    async def scenario() -> None:
        runner, table, outbox, _ = _poisoned_runner()
        stream = FakeStream()
        events, fold_poison = _poison_stream()
        for event in events[:3]:
            await runner.on_event(stream, event)
        await runner.flush(0)  # offsets 0-2 in one flush (still in flight when the next one folds)
        for event in events[3:]:
            await runner.on_event(stream, event)
        await runner.drain()
        assert stream.acked == list(range(7))
        assert _requests(table) == 3 and _requests(table, "search") == 1
        assert [offset for _, _, offset, _ in outbox.dead_letters] == [1, 5, 3]

    asyncio.run(scenario())
