"""The lens agent: input topic -> partition state -> partials on the summaries topic.

Moves data only. Per input partition it buffers decoded messages and, every
`flush_events` events or `flush_interval_s`, runs one flush: fold, checkpoint and
pick the closed windows at once, then, in a completion task while the agent reads on:

  state durable -> closed windows' partials and the watermark record sent ->
  closed windows tombstoned -> dead letters durable -> input acked.

Input is acked only after everything it caused is durable, so Faust never
commits past an event whose effect could still be lost (at-least-once), and the
offsets stored with the state skip what a restart hands out again (no double
count). The group's committed offsets do not rest on Faust's ack bookkeeping
alone: every `commit_interval_s` the timer commits each partition's durable
position itself (`commit_durable`). The stream is iterated event by event with
manual acks: `take()` would ack whole batches on failure (BRIEF section 5).
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable

from app.core.ingest.decode import Rejected
from app.core.ingest.deadletter import late_rejection
from app.core.windows.offsets import Action, OffsetGuard
from app.core.windows.partition import PartitionState, partition_prefix
from app.core.windows.windows import idle_targets, window_start
from app.observe.health import Progress
from app.config import window_spec
from app.lenses import Lens
from app.observe.metrics import Metrics
from app.faust.outbox import Outbox
from app.settings import Settings
from app.faust.store import TableStore, wait_all
from agents import safety

log = logging.getLogger("lensbridge.lens")

Seek = Callable[[str, int, int], Awaitable[None]]  # (topic, partition, offset)
Commit = Callable[[str, dict[int, int]], Awaitable[None]]  # (topic, {partition: next offset})


class _Pending:
    """What one partition has received since its last flush."""

    __slots__ = ("messages", "raw", "keys", "acks", "dead_letters", "events")

    def __init__(self) -> None:
        self.messages: list[tuple[int, list]] = []
        self.raw: list[bytes] = []  # each message's bytes, beside `messages`: for late dead letters
        self.keys: list[bytes | None] = []  # each message's key, beside `messages`
        self.acks: list[Any] = []  # Faust events to ack after the flush
        self.dead_letters: list[asyncio.Future] = []
        self.events = 0


class LensRunner:
    def __init__(self, lens: Lens, settings: Settings, store: TableStore, outbox: Outbox,
                 metrics: Metrics, clock: Callable[[], float], seek: Seek, *, commit: Commit,
                 rebalances: Callable[[], int] = lambda: 0, progress: Progress | None = None):
        self.progress = progress or Progress(settings.stall_s, clock)  # for /healthz: durable progress
        self.lens, self.settings, self.store, self.seek, self.commit = lens, settings, store, seek, commit
        # Rebalances started so far (counted by the consumer thread as a rebalance begins, before
        # Faust drops its ack bookkeeping and long before our forget()). A flush acks only if no
        # rebalance began since it folded: a later ack would land below the next committed
        # offset and stall commits. Not a flag: flushes right after a rebalance, while Faust
        # still calls it "rebalancing", must ack, or nothing ever acks their offsets.
        self.rebalances = rebalances
        self.outbox, self.metrics, self.clock = outbox, metrics, clock
        self.spec = window_spec(settings)
        self.states: dict[int, PartitionState] = {}
        self.guards: dict[int, OffsetGuard] = {}
        self.last_seek: dict[int, float] = {}
        self.pending: dict[int, _Pending] = {}
        self.last_flush: dict[int, float] = {}
        self.announced: dict[int, float] = {}  # partition -> watermark window last announced
        self.lock = asyncio.Lock()
        self.inflight: dict[int, asyncio.Future] = {}  # partition -> its last flush's completion
        self.stream: Any = None
        # Bumped by forget(): work begun before a rebalance must not touch state loaded after it.
        self.generation = 0
        # partition -> (next offset whose every effect is durable, rebalance count when known).
        self.durable: dict[int, tuple[int, int]] = {}
        self.committed_at_s = clock()  # durable positions are committed every `commit_interval_s`

    # -- state -------------------------------------------------------------------------------
    def state(self, partition: int) -> PartitionState:
        state = self.states.get(partition)
        if state is None:
            items = self.store.items(partition_prefix(self.lens.name, partition))
            state = PartitionState.restore(self.lens.spec, self.spec, partition, self.settings.max_subjects,
                                           items, self.clock())
            self.states[partition] = state
            self.guards[partition] = OffsetGuard(state.offset + 1)
            self.last_flush[partition] = self.clock()
            if state.offset >= 0:  # what the restored state holds is durable: re-reading it is waste
                self._mark_durable(partition, state.offset + 1, self.rebalances())
            log.info("%s: partition %d restored at offset %d with %d open window-subjects",
                     self.lens.name, partition, state.offset, state.open_slots)
        return state

    def forget(self) -> None:
        """Drop in-memory state (rebalance): it is reloaded from the table, input is re-read
        from the committed offsets, and unacked buffered input is simply seen again."""
        self.generation += 1
        self.inflight.clear()  # their tasks see the new generation and stop, unacked
        self.states.clear()
        self.guards.clear()
        self.pending.clear()
        self.announced.clear()
        self.durable.clear()
        # Recovery after a rebalance is not a stall (readiness covers it): the next tick says
        # again what waits on the partitions this runner then owns.
        self.progress.waiting(self.lens.name, False)

    # -- per message ---------------------------------------------------------------------------
    async def on_event(self, stream: Any, event: Any) -> None:
        self.stream = stream
        message = event.message
        partition, offset = message.partition, message.offset
        state = self.state(partition)
        action = self.guards[partition].check(offset)
        if action is not Action.PROCESS:
            await self._not_processed(stream, event, state, action)
            return
        now_s = self.clock()
        try:
            events, rejected = self.lens.decode(message.value, now_s)
        except Exception as exc:  # noqa: BLE001 - the per-message safety net (agents/safety.py)
            events, rejected = [], [safety.processing_error(exc, f"{self.lens.name} lens decode", message.value)]
        pending = self.pending.get(partition)
        if pending is None:
            pending = self.pending[partition] = _Pending()
            self.progress.waiting(self.lens.name, True)
        for bad in rejected:
            pending.dead_letters.append(self._dead_letter(bad, message))
        pending.messages.append((offset, events))
        pending.acks.append(event)
        pending.events += len(events)
        pending.raw.append(message.value)
        pending.keys.append(message.key)
        if (pending.events >= self.settings.flush_events
                or now_s - self.last_flush.get(partition, now_s) >= self.settings.flush_interval_s):
            await self.flush(partition)

    async def _not_processed(self, stream: Any, event: Any, state: PartitionState, action: Action) -> None:
        message = event.message
        if action is Action.DUPLICATE:
            if message.offset <= state.offset:  # handled before a restart: its effects are durable
                await stream.ack(event)
                self.progress.durable(self.lens.name)
                # Decoded only to count its events (replays after a restart are short).
                try:
                    events, _ = self.lens.decode(message.value, self.clock())
                except Exception:  # noqa: BLE001 - dead-lettered when it was first handled
                    events = []
                self.metrics.replay_skipped.labels(self.lens.name).inc(len(events))
        elif action is Action.SEEK:
            target = self.guards[message.partition].next_offset
            log.warning("%s: partition %d delivered offset %d but %d is next; seeking back",
                        self.lens.name, message.partition, message.offset, target)
            await self.seek(message.topic, message.partition, target)
            self.last_seek[message.partition] = self.clock()

    def _dead_letter(self, bad: Rejected, message: Any) -> asyncio.Future:
        return self._dead_letter_at(bad, message.partition, message.offset, message.key)

    def _dead_letter_at(self, bad: Rejected, partition: int, offset: int, key: bytes | None) -> asyncio.Future:
        for reason, count in bad.counts().items():  # a summary dead letter stands for many elements
            self.metrics.invalid.labels(self.lens.topic, reason).inc(count)
        return self.outbox.dead_letter(bad, self.lens.topic, partition, offset, key, self.clock())

    # -- flush ---------------------------------------------------------------------------------
    async def flush(self, partition: int, generation: int | None = None) -> None:
        """Flush one partition; with `generation`, only if no rebalance happened since."""
        async with self.lock:
            if generation is None or generation == self.generation:
                await self._flush(partition)

    async def _flush(self, partition: int) -> None:
        """Fold and decide everything now; the awaits run in a completion task per flush.

        The agent reads on while a flush's writes travel (at most two flushes of a partition
        in flight: this one and the previous, which is awaited here). The completion tasks of
        a partition run in order and each acks only after its own effects are durable."""
        now_s = self.clock()
        state = self.state(partition)
        pending = self.pending.pop(partition, None) or _Pending()
        self.last_flush[partition] = now_s
        try:
            outcome, refold_writes = state.fold(pending.messages, now_s), []
        except Exception as exc:  # noqa: BLE001 - a poison message: isolate it, fold the others
            safety.log_once(exc, f"{self.lens.name} lens fold")
            state, outcome, refold_writes = await safety.refold(self, partition, pending, now_s)
            if state is None:
                return  # revoked meanwhile: unacked, the next owner reads this input again
        self._count(outcome)
        if outcome.late:
            raw = {offset: value for (offset, _), value in zip(pending.messages, pending.raw)}
            late_by_offset: dict[int, list] = {}
            for offset, event in outcome.late:
                late_by_offset.setdefault(offset, []).append(event)
            for offset, late_events in late_by_offset.items():
                pending.dead_letters.append(self._late(state, partition, offset, late_events, raw[offset]))
        state_writes = refold_writes + self.store.write(partition, state.checkpoint())
        records = self._closed_records(state, partition)
        tombstones = state.drop_closed()
        if tombstones:
            self.metrics.windows_closed.labels(self.lens.name).inc(len({k.split("|")[2] for k in tombstones}))
        previous = self.inflight.get(partition)
        self.inflight[partition] = asyncio.ensure_future(self._complete(
            partition, (self.generation, self.rebalances()), previous, state_writes, records, tombstones,
            pending))
        if previous is not None:
            await previous

    async def _complete(self, partition: int, epoch: tuple[int, int], previous: asyncio.Future | None,
                        state_writes: list[asyncio.Future], records: list[tuple[str, dict]],
                        tombstones: list[str], pending: _Pending) -> None:
        """State durable -> partials and watermark sent -> closed windows tombstoned -> dead
        letters durable -> input acked. A crash or rebalance at any step leaves the input
        unacked, and the state's offsets make its re-reading skip what was already folded."""
        generation = epoch[0]
        if previous is not None:
            await previous
        await wait_all(state_writes)
        if generation != self.generation:
            return  # revoked meanwhile: unacked, so the next owner reads this input again
        await wait_all([self.outbox.summary(key, record) for key, record in records])
        if generation != self.generation:
            return  # the closed windows stay in the table: the next owner emits them again
        if tombstones:
            await self.store.write_and_wait(partition, dict.fromkeys(tombstones))
        await wait_all(pending.dead_letters)
        for event in pending.acks:
            if (self.generation, self.rebalances()) != epoch:
                return
            await self.stream.ack(event)
        if pending.messages:
            self._mark_durable(partition, pending.messages[-1][0] + 1, epoch[1])

    def _mark_durable(self, partition: int, next_offset: int, rebalances: int) -> None:
        self.progress.durable(self.lens.name)
        known = self.durable.get(partition)
        if known is None or known[1] != rebalances or known[0] < next_offset:
            self.durable[partition] = (next_offset, rebalances)

    async def commit_durable(self, partitions: set[int]) -> None:
        """Commit each partition's durable position (no-op where the group is already there).

        Faust commits only up to the first offset its ack bookkeeping lacks, and in CI that
        stalled for good on partitions whose state held everything (a rolling restart left
        one 17,464 offsets behind; where Faust lost the acks was not pinned down). The
        state's own offsets are the truth, so they are committed too: the group's lag then
        says what is really left to fold. Positions learnt before the latest rebalance began
        are not committed: the partition may be someone else's now."""
        rebalances = self.rebalances()
        positions = {p: offset for p, (offset, known_at) in self.durable.items()
                     if known_at == rebalances and p in partitions}
        if positions:
            await self.commit(self.lens.topic, positions)

    def _closed_records(self, state: PartitionState, partition: int) -> list[tuple[str, dict]]:
        """Partials of the windows the watermark closed, and the watermark record when it moved."""
        records = state.closed_partials()
        wm_window = window_start(state.watermark.watermark_s, self.spec.window_s) \
            if state.watermark.watermark_s != float("-inf") else None
        if records or (wm_window is not None and self.announced.get(partition) != wm_window):
            records.append(state.watermark_record(self.settings.partitions))
            self.announced[partition] = wm_window
        return records

    async def drain(self) -> None:
        """Flush every buffered partition and wait until all of it is durable and acked."""
        for partition in list(self.pending):
            await self.flush(partition)
        await self.settle()
        await self.commit_durable(set(self.states))

    async def settle(self) -> None:
        """Wait for the flushes in flight; a failed one raises here."""
        for task in list(self.inflight.values()):
            await task

    def _late(self, state: PartitionState, partition: int, offset: int, events: list,
              raw: bytes) -> asyncio.Future:
        """One dead letter per message for its late events: a batched message with k late
        events carries its bytes once, not k times (k copies grew with the square of its size)."""
        self.metrics.late.labels(self.lens.name).inc(len(events))
        bad = late_rejection(events, raw, partition, state.watermark.watermark_s, self.spec.window_s)
        return self.outbox.dead_letter(bad, self.lens.topic, partition, offset, None, self.clock())

    def _count(self, outcome: Any) -> None:
        name = self.lens.name
        self.metrics.events.labels(name).inc(outcome.folded)
        if outcome.skipped:
            self.metrics.replay_skipped.labels(name).inc(outcome.skipped)
        if outcome.overflow:
            self.metrics.overflow.labels(name).inc(outcome.overflow)
        if outcome.forced_windows:
            self.metrics.windows_forced.labels(name).inc(outcome.forced_windows)

    # -- timer -----------------------------------------------------------------------------------
    async def tick(self, assigned_partitions: set[int], end_offsets: dict[int, int]) -> None:
        """Flush due buffers and advance idle watermarks (called every second).

        `end_offsets`: the log end offset of each assigned input partition, to tell a
        partition that is caught up from one whose backlog is still unread."""
        for task in list(self.inflight.values()):
            if task.done():
                task.result()  # a failed flush completion raises here, and the timer exits
        now_s = self.clock()
        generation = self.generation
        for partition, guard in list(self.guards.items()):
            # Faust's fetcher can overwrite a seek with the batch it was draining; say it again.
            if guard.seeking and now_s - self.last_seek.get(partition, 0.0) >= 1.0:
                await self.seek(self.lens.topic, partition, guard.next_offset)
                self.last_seek[partition] = now_s
        for partition in sorted(assigned_partitions):
            if partition in self.pending and \
                    now_s - self.last_flush.get(partition, now_s) >= self.settings.flush_interval_s:
                await self.flush(partition, generation)
        if generation != self.generation:
            return  # a rebalance ran during the awaits above: the next tick sees the new assignment
        states = {p: self.state(p) for p in sorted(assigned_partitions)}
        caught_up = {p for p in states if p not in self.pending and not self.guards[p].seeking
                     and self.guards[p].next_offset >= end_offsets.get(p, 1 << 62)}
        targets = idle_targets({p: s.watermark for p, s in states.items()}, now_s, caught_up)
        for partition, target in targets.items():
            if generation == self.generation and states[partition].advance_to(target):
                await self.flush(partition, generation)
        if generation == self.generation and now_s - self.committed_at_s >= self.settings.commit_interval_s:
            self.committed_at_s = now_s
            await self.commit_durable(assigned_partitions)
        watermarks = [s.watermark.watermark_s for p, s in self.states.items() if p in assigned_partitions]
        if watermarks and min(watermarks) != float("-inf"):
            self.metrics.watermark_lag.labels(self.lens.name).set(max(0.0, now_s - min(watermarks)))
        self.metrics.open_slots.labels(self.lens.name).set(sum(s.open_slots for s in self.states.values()))
        self._report_waiting(assigned_partitions, end_offsets)

    def _report_waiting(self, assigned_partitions: set[int], end_offsets: dict[int, int]) -> None:
        """Input waits if something is buffered, a flush is still in flight, or an assigned
        partition has unread input (its end offset beyond what this runner has read)."""
        waiting = bool(self.pending) or any(not task.done() for task in self.inflight.values()) or any(
            p in self.guards and self.guards[p].next_offset < end for p, end in end_offsets.items()
            if p in assigned_partitions)
        self.progress.waiting(self.lens.name, waiting)

