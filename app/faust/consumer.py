"""Commits and seeks through Faust's consumer: the only code that touches its private
commit bookkeeping."""
from __future__ import annotations

import faust
from faust.types import TP

from agents.ports import Commit, Seek


def consumer_ports(app: faust.App) -> tuple[Seek, Commit]:
    """The runners' seek and commit, through the app's consumer."""

    async def seek(topic: str, partition: int, offset: int) -> None:
        # On the consumer's own thread: Faust's `consumer.seek` calls aiokafka from this one, and
        # its fetcher, iterating the same buffers on the consumer thread, then crashed with a
        # KeyError (CI: two-hour crash test; the worker hung in shutdown).
        await app.consumer.seek_wait({TP(topic, partition): offset})

    async def commit(topic: str, positions: dict[int, int]) -> None:
        await commit_positions(app.consumer, topic, positions)

    return seek, commit


async def commit_positions(consumer, topic: str, positions: dict[int, int]) -> None:
    """Commit `positions` where they are ahead of what this consumer last committed.

    Faust's `_committed_offset` is raised too, so its own commit loop (which commits only
    offsets above it) never moves the group back below a durable position."""
    assignment = consumer.assignment()
    ahead = {}
    for partition, offset in positions.items():
        tp = TP(topic, partition)
        committed = consumer._committed_offset.get(tp)
        if tp in assignment and (committed is None or committed < offset):
            ahead[tp] = offset
    if ahead and await consumer._commit(ahead):
        for tp, offset in ahead.items():
            committed = consumer._committed_offset.get(tp)
            if committed is None or committed < offset:
                consumer._committed_offset[tp] = offset
