"""Where a runner reads, what is durable, and what it may commit: the at-least-once
bookkeeping both runners share, for the partitions of one input topic.

- **Next offset** per partition (`OffsetGuard`): the state stores the offset it needs next,
  and every delivered message is checked against it. A duplicate whose effects are durable
  is acked at once; one past the next offset makes the consumer seek back, and the seek is
  repeated while it waits (Faust's fetcher can overwrite a seek with the batch it was draining).
- **Epoch** `(generation, rebalances)`: `generation` moves on `forget()` (the partitions were
  revoked), `rebalances` as soon as a rebalance begins. Work started in one epoch never acks
  or records positions in another: an ack below the next committed offset stalls commits.
- **Durable positions**: the next offset whose every effect is durable, with the rebalance
  count when that was learnt, committed every `commit_interval_s`. Faust commits only up to
  the first offset its ack bookkeeping lacks, which stalled for good in CI on partitions whose
  state held everything; the state's own offsets are the truth, so they are committed too.
  Positions learnt before the latest rebalance began are not: the partition may be someone
  else's now.
"""
from __future__ import annotations

import logging

from agents.ports import Clock, Commit, Event, Rebalances, Seek, Stream
from app.core.windows.offsets import Action, OffsetGuard
from app.observe.health import Progress

log = logging.getLogger("lensbridge.positions")

SEEK_REPEAT_S = 1.0
Epoch = tuple[int, int]  # (generation, rebalances)


class InputPositions:
    def __init__(self, name: str, topic: str, *, seek: Seek, commit: Commit, rebalances: Rebalances,
                 clock: Clock, commit_interval_s: float, progress: Progress):
        self.name, self.topic = name, topic
        self._seek, self._commit, self.rebalances, self.clock = seek, commit, rebalances, clock
        self.commit_interval_s, self.progress = commit_interval_s, progress
        self.generation = 0
        self.guards: dict[int, OffsetGuard] = {}
        self.last_seek_s: dict[int, float] = {}
        self.durable: dict[int, tuple[int, int]] = {}  # partition -> (next offset, rebalances)
        self.committed_at_s = clock()

    # -- epoch -----------------------------------------------------------------------------
    def epoch(self) -> Epoch:
        return self.generation, self.rebalances()

    def forget(self) -> None:
        """The partitions were revoked: what was known about them is someone else's now."""
        self.generation += 1
        self.guards.clear()
        self.durable.clear()

    # -- next offset -----------------------------------------------------------------------
    def restored(self, partition: int, next_offset: int) -> None:
        """The state of `partition` was loaded and needs `next_offset` next; what it holds is
        durable, so re-reading it would be waste."""
        self.guards[partition] = OffsetGuard(next_offset)
        if next_offset > 0:
            self.mark_durable(partition, next_offset, self.rebalances())

    def next_offset(self, partition: int) -> int:
        return self.guards[partition].next_offset

    def seeking(self, partition: int) -> bool:
        return self.guards[partition].seeking

    async def admit(self, stream: Stream, event: Event, durable_below: int | None = None) -> Action:
        """PROCESS: the caller handles `event`. DUPLICATE: acked if its effects are durable
        (offset below `durable_below`; None: every duplicate), else left to the write that
        holds it. SEEK: the consumer is sent back to the next offset. IGNORE: drop it."""
        message = event.message
        action = self.guards[message.partition].check(message.offset)
        if action is Action.DUPLICATE and (durable_below is None or message.offset < durable_below):
            await stream.ack(event)
            self.progress.durable(self.name)
        elif action is Action.SEEK:
            target = self.next_offset(message.partition)
            log.warning("%s: partition %d delivered offset %d but %d is next; seeking back",
                        self.name, message.partition, message.offset, target)
            await self._seek_to(message.partition)
        return action

    async def repeat_seeks(self) -> None:
        now_s = self.clock()
        for partition, guard in list(self.guards.items()):
            if guard.seeking and now_s - self.last_seek_s.get(partition, 0.0) >= SEEK_REPEAT_S:
                await self._seek_to(partition)

    async def _seek_to(self, partition: int) -> None:
        await self._seek(self.topic, partition, self.next_offset(partition))
        self.last_seek_s[partition] = self.clock()

    # -- durable positions -----------------------------------------------------------------
    def mark_durable(self, partition: int, next_offset: int, rebalances: int) -> None:
        self.progress.durable(self.name)
        known = self.durable.get(partition)
        if known is None or known[1] != rebalances or known[0] < next_offset:
            self.durable[partition] = (next_offset, rebalances)

    async def commit_durable(self, partitions: set[int]) -> None:
        """Commit each partition's durable position learnt since the latest rebalance began."""
        rebalances = self.rebalances()
        positions = {p: offset for p, (offset, known_at) in self.durable.items()
                     if known_at == rebalances and p in partitions}
        if positions:
            await self._commit(self.topic, positions)

    async def commit_if_due(self, partitions: set[int]) -> None:
        now_s = self.clock()
        if now_s - self.committed_at_s >= self.commit_interval_s:
            self.committed_at_s = now_s
            await self.commit_durable(partitions)


class PositionedRunner:
    """What a runner exposes of its positions: the progress /healthz reads (shared with them)
    and the generation that moves on `forget()`."""

    positions: InputPositions

    @property
    def progress(self) -> Progress:
        return self.positions.progress

    @progress.setter
    def progress(self, progress: Progress) -> None:
        self.positions.progress = progress

    @property
    def generation(self) -> int:
        """Work begun before a rebalance must not touch state loaded after it."""
        return self.positions.generation
