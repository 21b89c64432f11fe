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
manual acks: Faust's `take()` would ack whole batches on failure.
"""
from __future__ import annotations

import asyncio
import logging

from agents import safety
from agents.pending import Pending
from agents.ports import Clock, Commit, Event, Message, Outbox, Rebalances, Seek, Stream, TableStore, wait_all
from agents.positions import Epoch, InputPositions, PositionedRunner
from app.config import window_spec
from app.core.ingest.deadletter import late_rejection
from app.core.ingest.decode import Rejected
from app.core.windows.offsets import Action
from app.core.windows.partition import FoldOutcome, PartitionState, partition_prefix
from app.core.windows.windows import NO_WATERMARK, idle_targets, window_start
from app.lenses import Lens
from app.observe.health import Progress
from app.observe.metrics import Metrics
from app.settings import Settings

log = logging.getLogger("lensbridge.lens")


class LensRunner(PositionedRunner):
    def __init__(self, lens: Lens, settings: Settings, store: TableStore, outbox: Outbox,
                 metrics: Metrics, clock: Clock, seek: Seek, *, commit: Commit,
                 rebalances: Rebalances = lambda: 0, progress: Progress | None = None):
        self.lens, self.settings, self.store = lens, settings, store
        # `rebalances` counts rebalances as each begins (on the consumer thread, before Faust
        # drops its ack bookkeeping and long before our forget()). Not a flag: flushes right
        # after a rebalance, while Faust still calls it "rebalancing", must ack, or nothing
        # ever acks their offsets.
        self.positions = InputPositions(lens.name, lens.topic, seek=seek, commit=commit, rebalances=rebalances,
                                        clock=clock, commit_interval_s=settings.commit_interval_s,
                                        progress=progress or Progress(settings.stall_s, clock))
        self.outbox, self.metrics, self.clock = outbox, metrics, clock
        self.spec = window_spec(settings)
        self.states: dict[int, PartitionState] = {}
        self.pending: dict[int, Pending] = {}
        self.last_flush: dict[int, float] = {}
        self.announced: dict[int, int | None] = {}  # partition -> watermark window last announced
        self.lock = asyncio.Lock()
        self.inflight: dict[int, asyncio.Future] = {}  # partition -> its last flush's completion
        self.stream: Stream | None = None

    # -- state -------------------------------------------------------------------------------
    def state(self, partition: int) -> PartitionState:
        state = self.states.get(partition)
        if state is None:
            items = self.store.items(partition_prefix(self.lens.name, partition))
            state = PartitionState.restore(self.lens.spec, self.spec, partition, self.settings.max_subjects,
                                           items, self.clock())
            self.states[partition] = state
            self.positions.restored(partition, state.offset + 1)
            self.last_flush[partition] = self.clock()
            log.info("%s: partition %d restored at offset %d with %d open window-subjects",
                     self.lens.name, partition, state.offset, state.open_slots)
        return state

    def forget(self) -> None:
        """Drop in-memory state (rebalance): it is reloaded from the table, input is re-read
        from the committed offsets, and unacked buffered input is simply seen again."""
        self.positions.forget()
        self.inflight.clear()  # their tasks see the new generation and stop, unacked
        self.states.clear()
        self.pending.clear()
        self.announced.clear()
        # Recovery after a rebalance is not a stall (readiness covers it): the next tick says
        # again what waits on the partitions this runner then owns.
        self.progress.waiting(self.lens.name, False)

    # -- per message ---------------------------------------------------------------------------
    async def on_event(self, stream: Stream, event: Event) -> None:
        self.stream = stream
        message = event.message
        partition, offset = message.partition, message.offset
        state = self.state(partition)
        # Duplicates handled before a restart are durable: acked. Those still buffered wait for their flush.
        action = await self.positions.admit(stream, event, durable_below=state.offset + 1)
        if action is Action.DUPLICATE and offset <= state.offset:
            self._count_replayed(message.value)
        if action is not Action.PROCESS:
            return
        now_s = self.clock()
        try:
            events, rejected = self.lens.decode(message.value, now_s)
        except Exception as exc:  # noqa: BLE001 - the per-message safety net (agents/safety.py)
            events, rejected = [], [safety.processing_error(exc, f"{self.lens.name} lens decode", message.value)]
        pending = self.pending.get(partition)
        if pending is None:
            pending = self.pending[partition] = Pending()
            self.progress.waiting(self.lens.name, True)
        for bad in rejected:
            pending.dead_letters.append(self._dead_letter(bad, message))
        pending.add(event, events)
        if (pending.events >= self.settings.flush_events
                or now_s - self.last_flush.get(partition, now_s) >= self.settings.flush_interval_s):
            await self.flush(partition)

    def _count_replayed(self, raw: bytes | None) -> None:
        # Decoded only to count its events (replays after a restart are short).
        try:
            events, _ = self.lens.decode(raw, self.clock())
        except Exception:  # noqa: BLE001 - dead-lettered when it was first handled
            events = []
        self.metrics.replay_skipped.labels(self.lens.name).inc(len(events))

    def _dead_letter(self, bad: Rejected, message: Message) -> asyncio.Future:
        return self.dead_letter_at(bad, message.partition, message.offset, message.key)

    def dead_letter_at(self, bad: Rejected, partition: int, offset: int, key: bytes | None) -> asyncio.Future:
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
        pending = self.pending.pop(partition, None) or Pending()
        self.last_flush[partition] = now_s
        try:
            outcome, refold_writes = state.fold(pending.messages, now_s), []
        except Exception as exc:  # noqa: BLE001 - a poison message: isolate it, fold the others
            safety.log_once(exc, f"{self.lens.name} lens fold")
            state, outcome, refold_writes = await safety.refold(self, partition, pending, now_s)
            if state is None:
                return  # revoked meanwhile: unacked, the next owner reads this input again
        self._count(outcome)
        for offset, late_events, raw in pending.late_by_message(outcome.late):
            pending.dead_letters.append(self._late(state, partition, offset, late_events, raw))
        state_writes = refold_writes + self.store.write(partition, state.checkpoint())
        records = self._closed_records(state, partition)
        tombstones = state.drop_closed()
        if tombstones:
            self.metrics.windows_closed.labels(self.lens.name).inc(len({k.split("|")[2] for k in tombstones}))
        previous = self.inflight.get(partition)
        self.inflight[partition] = asyncio.ensure_future(self._complete(
            partition, self.positions.epoch(), previous, state_writes, records, tombstones, pending))
        if previous is not None:
            await previous

    async def _complete(self, partition: int, epoch: Epoch, previous: asyncio.Future | None,
                        state_writes: list[asyncio.Future], records: list[tuple[str, dict]],
                        tombstones: list[str], pending: Pending) -> None:
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
            if self.positions.epoch() != epoch or self.stream is None:
                return
            await self.stream.ack(event)
        if pending.messages:
            self.positions.mark_durable(partition, pending.messages[-1][0] + 1, epoch[1])

    async def commit_durable(self, partitions: set[int]) -> None:
        """Commit each partition's durable position (agents/positions.py says why)."""
        await self.positions.commit_durable(partitions)

    def _closed_records(self, state: PartitionState, partition: int) -> list[tuple[str, dict]]:
        """Partials of the windows the watermark closed, and the watermark record when it moved."""
        records = state.closed_partials()
        wm_window = window_start(state.watermark.watermark_s, self.spec.window_s) \
            if state.watermark.watermark_s != NO_WATERMARK else None
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
              raw: bytes | None) -> asyncio.Future:
        """One dead letter per message for its late events: a batched message with k late
        events carries its bytes once, not k times (k copies grew with the square of its size)."""
        self.metrics.late.labels(self.lens.name).inc(len(events))
        bad = late_rejection(events, raw or b"", partition, state.watermark.watermark_s, self.spec.window_s)
        return self.outbox.dead_letter(bad, self.lens.topic, partition, offset, None, self.clock())

    def _count(self, outcome: FoldOutcome) -> None:
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
        await self.positions.repeat_seeks()
        for partition in sorted(assigned_partitions):
            if partition in self.pending and \
                    now_s - self.last_flush.get(partition, now_s) >= self.settings.flush_interval_s:
                await self.flush(partition, generation)
        if generation != self.generation:
            return  # a rebalance ran during the awaits above: the next tick sees the new assignment
        states = {p: self.state(p) for p in sorted(assigned_partitions)}
        caught_up = {p for p in states if p not in self.pending and not self.positions.seeking(p)
                     and self.positions.next_offset(p) >= end_offsets.get(p, 1 << 62)}
        targets = idle_targets({p: s.watermark for p, s in states.items()}, now_s, caught_up)
        for partition, target in targets.items():
            if generation == self.generation and states[partition].advance_to(target):
                await self.flush(partition, generation)
        if generation == self.generation:
            await self.positions.commit_if_due(assigned_partitions)
        watermarks = [s.watermark.watermark_s for p, s in self.states.items() if p in assigned_partitions]
        if watermarks and min(watermarks) != NO_WATERMARK:
            self.metrics.watermark_lag.labels(self.lens.name).set(max(0.0, now_s - min(watermarks)))
        self.metrics.open_slots.labels(self.lens.name).set(sum(s.open_slots for s in self.states.values()))
        self._report_waiting(assigned_partitions, end_offsets)

    def _report_waiting(self, assigned_partitions: set[int], end_offsets: dict[int, int]) -> None:
        """Input waits if something is buffered, a flush is still in flight, or an assigned
        partition has unread input (its end offset beyond what this runner has read)."""
        waiting = bool(self.pending) or any(not task.done() for task in self.inflight.values()) or any(
            p in self.positions.guards and self.positions.next_offset(p) < end
            for p, end in end_offsets.items() if p in assigned_partitions)
        self.progress.waiting(self.lens.name, waiting)

