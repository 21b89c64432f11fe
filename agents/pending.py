"""What one input partition has received since its last flush: the lens runner's buffer."""
from __future__ import annotations

import asyncio
from typing import Any, Iterable

from agents.ports import Event


class Pending:
    __slots__ = ("messages", "raw", "keys", "acks", "dead_letters", "events")

    def __init__(self) -> None:
        self.messages: list[tuple[int, list]] = []  # (offset, decoded events)
        self.raw: list[bytes | None] = []  # each message's bytes, beside `messages`: for late dead letters
        self.keys: list[bytes | None] = []  # each message's key, beside `messages`
        self.acks: list[Event] = []  # input to ack after the flush
        self.dead_letters: list[asyncio.Future] = []
        self.events = 0

    def add(self, event: Event, events: list) -> None:
        message = event.message
        self.messages.append((message.offset, events))
        self.acks.append(event)
        self.events += len(events)
        self.raw.append(message.value)
        self.keys.append(message.key)

    def late_by_message(self, late: Iterable[tuple[int, Any]]) -> list[tuple[int, list, bytes | None]]:
        """(offset, its late events, its bytes) per message with late events: one dead letter
        each carries the bytes once (one per event grew with the square of a batch's size)."""
        raw = {offset: value for (offset, _), value in zip(self.messages, self.raw, strict=True)}
        by_offset: dict[int, list] = {}
        for offset, event in late:
            by_offset.setdefault(offset, []).append(event)
        return [(offset, events, raw[offset]) for offset, events in by_offset.items()]
