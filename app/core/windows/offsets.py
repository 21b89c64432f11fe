"""Which input offset comes next, independent of what the consumer group committed.

Faust's commits can run ahead of what was processed: messages that reach a
stream while flow control is paused, or from an older rebalance generation, are
dropped *and acked* (faust-streaming's streams.py), and exactly-once is not relied on either.
So the state stores the next offset it needs, and this guard
compares every delivered offset with it:

- below it: a duplicate (already handled) -> skip;
- equal: process;
- above it: something was skipped -> seek back to the needed offset and ignore
  messages until it arrives. A topic may legitimately have holes (transaction
  markers, compaction): when the message that triggered the seek is delivered
  again after the seek, the hole is real and processing goes on from there.
"""
from __future__ import annotations

from enum import Enum


class Action(Enum):
    PROCESS = "process"
    DUPLICATE = "duplicate"
    SEEK = "seek"  # seek the consumer to `OffsetGuard.next_offset`, drop this message
    IGNORE = "ignore"  # delivered before the seek took effect: it will come again


class OffsetGuard:
    __slots__ = ("next_offset", "_trigger", "_trigger_seen")

    def __init__(self, next_offset: int):
        self.next_offset = next_offset
        self._trigger: int | None = None
        self._trigger_seen = 0

    def check(self, offset: int) -> Action:
        if offset < self.next_offset:
            return Action.DUPLICATE
        if offset == self.next_offset:
            return self._accept(offset)
        if self._trigger is None:
            self._trigger, self._trigger_seen = offset, 1
            return Action.SEEK
        if offset == self._trigger:
            self._trigger_seen += 1
            if self._trigger_seen >= 2:  # re-read from the seek position: the hole is real
                return self._accept(offset)
        return Action.IGNORE

    def _accept(self, offset: int) -> Action:
        self.next_offset = offset + 1
        self._trigger = None
        return Action.PROCESS

    @property
    def seeking(self) -> bool:
        return self._trigger is not None
