"""What the runners need from the outside world, as small typed Protocols.

The runners hold the at-least-once logic and nothing of Faust: app/faust/ adapts Faust's
stream, events, tables and producer to these ports, and tests use the fakes in
tests/fakes.py. Every write returns a future that resolves once the record is durable,
so a runner acks its input only after everything that input caused is stored.
"""
from __future__ import annotations

import asyncio
from typing import Awaitable, Callable, Iterable, Mapping, Protocol

from app.core.ingest.decode import Rejected


class Message(Protocol):
    """One input record, as delivered."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...


class Event(Protocol):
    """A delivered record the stream can ack."""

    @property
    def message(self) -> Message: ...


class Stream(Protocol):
    """The input stream with manual acks: an acked offset may be committed."""

    async def ack(self, event: Event) -> object: ...


class TableStore(Protocol):
    """Durable key/value state per partition (a changelog-backed table)."""

    def items(self, prefix: str) -> list[tuple[str, bytes]]: ...
    def write(self, partition: int, writes: Mapping[str, bytes | None]) -> list[asyncio.Future]: ...
    async def write_and_wait(self, partition: int, writes: Mapping[str, bytes | None]) -> None: ...


class Outbox(Protocol):
    """The output topics; each send is a future that resolves on delivery."""

    def summary(self, key: str, value: dict) -> asyncio.Future: ...
    def merged_window(self, key: str, value: dict) -> asyncio.Future: ...
    def alert(self, key: str, value: dict) -> asyncio.Future: ...
    def dead_letter(self, bad: Rejected, topic: str, partition: int, offset: int, key: bytes | None,
                    received_at_s: float) -> asyncio.Future: ...


Seek = Callable[[str, int, int], Awaitable[None]]  # (topic, partition, offset): read from there next
Commit = Callable[[str, dict[int, int]], Awaitable[None]]  # (topic, {partition: next offset})
Clock = Callable[[], float]  # seconds since the epoch
Rebalances = Callable[[], int]  # rebalances begun so far (counted as each begins)


async def wait_all(futures: Iterable[asyncio.Future]) -> None:
    """Wait for every send; the first failure propagates (input is then not acked)."""
    pending = list(futures)
    if pending:
        await asyncio.gather(*pending)
