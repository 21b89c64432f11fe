"""Fakes of the runners' ports (agents/ports.py) and of the Faust table surface TableStore
uses, shared by every test that drives a runner without a broker."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass

import orjson

T0_S = 1_767_225_600  # 2026-01-01 00:00 UTC


def done() -> asyncio.Future:
    future = asyncio.get_running_loop().create_future()
    future.set_result(None)
    return future


@dataclass
class FakeMessage:
    topic: str
    partition: int
    offset: int
    value: bytes | None
    key: bytes | None = None


@dataclass
class FakeEvent:
    message: FakeMessage


def request_event(partition: int, offset: int, ts_s: float, service: str = "checkout") -> FakeEvent:
    """One backend request on the requests topic."""
    value = orjson.dumps({"ts": ts_s, "service": service, "latency_ms": 12.5, "status": 200})
    return FakeEvent(FakeMessage("requests", partition, offset, value))


def summary_event(offset: int, value: bytes | None = None, key: bytes | None = b"k") -> FakeEvent:
    """One record on the summaries topic (partition 0)."""
    return FakeEvent(FakeMessage("lens-summaries", 0, offset, value, key))


class FakeTable:
    """Faust table surface TableStore uses; `gate`, when set, holds every changelog send."""

    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}
        self.sent: list[tuple[int, bytes, bytes | None]] = []
        self.gate: asyncio.Future | None = None

    def send_changelog(self, partition: int, key: bytes, value: bytes | None) -> asyncio.Future:
        self.sent.append((partition, key, value))
        return self.gate if self.gate is not None else done()


class FakeOutbox:
    """Records what a runner sends; every send is delivered at once."""

    def __init__(self) -> None:
        self.summaries: list[tuple[str, dict]] = []
        self.windows: list[tuple[str, dict]] = []
        self.alerts: list[tuple[str, dict]] = []
        self.dead_letters: list = []

    def summary(self, key: str, value: dict) -> asyncio.Future:
        self.summaries.append((key, value))
        return done()

    def merged_window(self, key: str, value: dict) -> asyncio.Future:
        self.windows.append((key, value))
        return done()

    def alert(self, key: str, value: dict) -> asyncio.Future:
        self.alerts.append((key, value))
        return done()

    def dead_letter(self, bad, topic, partition, offset, key, received_at_s) -> asyncio.Future:
        self.dead_letters.append((bad.reason, partition, offset, bad.raw))
        return done()


class FakeStream:
    """Acks in the order given; yields first, as Faust's ack may (another acker can run)."""

    def __init__(self) -> None:
        self.acked: list[int] = []

    async def ack(self, event) -> None:
        await asyncio.sleep(0)
        self.acked.append(event.message.offset)
