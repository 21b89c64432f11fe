"""The joiner agent: summaries topic -> merged windows -> gauges, merged-window topic, alerts.

The summaries topic has one partition, so one joiner sees every partial. Its
state (pending partials, watermarks per lens and partition; layout in
app/core/joiner_table.py) lives in a table written before the record is acked;
merged windows are published under a stable key, so a re-send after a crash
replaces itself downstream. Table writes are not awaited one record at a time:
up to `MAX_UNACKED_RECORDS` records wait, in order, for their writes to land
before they are acked (one changelog partition keeps them in order, and each
write carries the next offset to read). Like the lens runners, it commits its
durable position itself every `commit_interval_s` and on SIGTERM
(agents/positions.py).
"""
from __future__ import annotations

import asyncio
import logging
from collections import deque

import orjson

from agents import safety
from agents.corr_table import CorrelatorTable
from agents.ports import Clock, Commit, Event, Message, Outbox, Rebalances, Seek, Stream, TableStore, wait_all
from agents.positions import InputPositions, PositionedRunner
from app.config import detection_config
from app.core import joiner_table
from app.core.detect.correlate import Correlator
from app.core.ingest.decode import NOT_JSON, Rejected
from app.core.joiner_table import SUMMARIES_PARTITION
from app.core.slo.burn_step import BurnStep
from app.core.windows.merger import Released, WindowMerger, record_problem
from app.core.windows.offsets import Action
from app.lenses import Lens, WindowObserver
from app.observe.health import Progress
from app.observe.metrics import Metrics
from app.settings import Settings

log = logging.getLogger("lensbridge.joiner")

NAME = "joiner"
MAX_UNACKED_RECORDS = 256  # records whose table writes may be in flight at once


class JoinerRunner(PositionedRunner):
    def __init__(self, lenses: dict[str, Lens], settings: Settings, store: TableStore, outbox: Outbox,
                 metrics: Metrics, clock: Clock, seek: Seek, slos: list | None = None, *,
                 commit: Commit, rebalances: Rebalances = lambda: 0, progress: Progress | None = None):
        self.lenses, self.settings, self.store = lenses, settings, store
        self.positions = InputPositions(NAME, settings.topic_summaries, seek=seek, commit=commit,
                                        rebalances=rebalances, clock=clock,
                                        commit_interval_s=settings.commit_interval_s,
                                        progress=progress or Progress(settings.stall_s, clock))
        self.slos = slos or []
        self.burns: BurnStep | None = None
        self.outbox, self.metrics, self.clock = outbox, metrics, clock
        self.merger: WindowMerger | None = None
        self.correlator: Correlator | None = None
        self.corr_table = CorrelatorTable()  # the correlator's keys in the table
        self.observers: dict[str, WindowObserver] = {}  # lens -> its merged windows' gauges
        # Records whose handling straddles a rebalance stop at their next await, unacked and
        # with no further writes; whoever owns the joiner then reads them again.
        self.unacked: deque[tuple[list, Event, int]] = deque()  # (write futures, event, rebalances), in order
        self.stream: Stream | None = None
        self.ack_lock = asyncio.Lock()

    def _restore(self) -> WindowMerger:
        state = joiner_table.read_state(self.store.items(""), self.settings.window_s, self.settings.partitions)
        self.positions.restored(SUMMARIES_PARTITION, state.next_offset)
        self.corr_table = CorrelatorTable()
        self.correlator = self.corr_table.restore(state.correlator, detection_config(self.settings))
        self.burns = BurnStep(self.slos, self.settings.window_s, state.burns,
                              self.settings.cx_rolling_windows) if self.slos else None
        if self.burns and self.burns.reset_reason:
            log.warning("SLO state not reusable (%s); starting fresh", self.burns.reset_reason)
        # The gauges' rolling views live in memory: after a restart they refill within N windows.
        self.observers = {name: lens.gauges(self.metrics) for name, lens in self.lenses.items()}
        log.info("joiner restored: %d pending windows", len(state.merger.pending))
        return state.merger

    def forget(self) -> None:
        self.positions.forget()
        self.unacked.clear()  # never acked: whoever owns the joiner next reads them again
        self.progress.waiting(NAME, False)  # as LensRunner.forget: recovery is not a stall
        self.merger = None
        self.correlator = None
        self.observers = {}
        # Another worker may run the joiner after this rebalance: its gauges are not ours to show.
        self.metrics.clear_joiner_gauges()

    async def on_event(self, stream: Stream, event: Event) -> None:
        """One summaries record; acked only once its effect is in the table."""
        generation = self.generation
        if self.merger is None:
            self.merger = self._restore()
            await self._release()  # windows completed before a crash but not yet published
            if generation != self.generation:
                return
        if await self.positions.admit(stream, event) is Action.PROCESS:
            writes = await self._on_record(event.message)
            if generation == self.generation:
                self.stream = stream
                if not self.unacked:
                    self.progress.waiting(NAME, True)
                self.unacked.append((writes, event, self.positions.rebalances()))
                await self.ack_durable(MAX_UNACKED_RECORDS)

    async def ack_durable(self, keep: int = 0) -> None:
        """Ack records in order once their writes landed; wait for the oldest while more than
        `keep` are waiting (`keep=0`: settle everything)."""
        async with self.ack_lock:  # the agent and the timer both ack: one at a time, in order
            generation = self.generation
            while self.unacked and (len(self.unacked) > keep or all(f.done() for f in self.unacked[0][0])):
                writes, event, rebalances = self.unacked[0]
                await wait_all(writes)
                if self.positions.epoch() != (generation, rebalances) or self.stream is None:
                    return  # forget() follows and drops it: the next owner reads it again
                self.unacked.popleft()
                await self.stream.ack(event)
                if generation == self.generation:
                    self.positions.mark_durable(SUMMARIES_PARTITION, event.message.offset + 1, rebalances)

    async def commit_durable(self) -> None:
        """Commit the durable position, unless a rebalance began since it was learnt."""
        await self.positions.commit_durable({SUMMARIES_PARTITION})

    async def tick(self, end_offset: int | None = None) -> None:
        """Ack what became durable, commit when due, repeat a pending seek. `end_offset`: the
        summaries partition's end, if owned (unread records there mean input waits)."""
        await self.ack_durable()
        # Before its first record the joiner has not restored its position: it cannot tell.
        self.progress.waiting(NAME, bool(self.unacked) or (
            end_offset is not None and self.merger is not None
            and self.positions.next_offset(SUMMARIES_PARTITION) < end_offset))
        await self.positions.commit_if_due({SUMMARIES_PARTITION})
        await self.positions.repeat_seeks()

    def _parse(self, message: Message) -> tuple[dict | None, bool, list]:
        """(record, changed, dead letter in flight); a record the merger cannot take is dead-lettered."""
        assert self.merger is not None
        raw = message.value
        try:
            record = orjson.loads(raw if raw is not None else b"")
            problem = record_problem(record, self.lenses)
            if problem is None:
                return record, self.merger.add(record), []
            bad = Rejected(*problem, raw or b"")
        except orjson.JSONDecodeError as exc:
            bad = Rejected(NOT_JSON, f"summaries record is not valid JSON: {exc}", raw or b"")
        except Exception as exc:  # noqa: BLE001 - the per-message safety net (agents/safety.py)
            bad = safety.processing_error(exc, "joiner merge", raw)
        self.metrics.invalid.labels(message.topic, bad.reason).inc()  # e.g. someone else wrote here
        return None, False, [self.outbox.dead_letter(bad, message.topic, message.partition, message.offset,
                                                     message.key, self.clock())]

    async def _on_record(self, message: Message) -> list:
        """Apply one record; returns its table writes (and dead letter) in flight, awaited before its ack."""
        record, changed, dead_letters = self._parse(message)
        writes: dict[str, bytes | None] = {}
        if changed and record is not None:
            writes.update(joiner_table.record_writes(record, message.value or b""))
        # Written in this order on one changelog partition: if the offset landed, so did the record.
        writes[joiner_table.NEXT_OFFSET] = orjson.dumps(self.positions.next_offset(SUMMARIES_PARTITION))
        futures = self.store.write(SUMMARIES_PARTITION, writes) + dead_letters
        if changed and record is not None and record.get("type") == "watermark":
            await self._release()
        return futures

    async def _release(self) -> None:
        assert self.merger is not None and self.correlator is not None
        released = self.merger.release()
        if not released:
            return
        sends = [self._publish(window) for window in released]
        alerts = self._decide()
        alerts += self._burn_alerts(self.correlator.take_active_history())
        for alert in alerts:
            sends.append(self.outbox.alert(alert["alert_id"], alert))
            self.metrics.alerts.labels(alert["kind"], alert["status"]).inc()
        # Alerts first, state after: a crash in between re-sends identical alerts (same ids),
        # the reverse order could lose them. Then, in this order on one changelog partition:
        # correlator and SLO state, the release points, and only last the released partials'
        # deletions, so a crash part-way never leaves a window half deleted but not released.
        generation = self.generation
        await wait_all(f for f in sends if f is not None)
        if generation != self.generation:
            return  # revoked meanwhile: the alerts went out, the next owner re-sends them (same ids)
        state = self.corr_table.writes(self.correlator)
        if self.burns:
            state[joiner_table.BURNS] = orjson.dumps(self.burns.to_state(), option=orjson.OPT_SORT_KEYS)
        points, deletions = joiner_table.release_writes(self.merger, released)
        await self.store.write_and_wait(SUMMARIES_PARTITION, {**state, **points, **deletions})

    def _publish(self, window: Released) -> asyncio.Future | None:
        """Merge one released window, publish it and feed it to the correlator and the SLOs."""
        assert self.correlator is not None
        merged = self._merge(window)
        if merged is None:
            return None
        try:
            self.correlator.on_window(merged)
        except ValueError as exc:
            log.error("correlator rejected %s window %s of %s: %s", window.lens, window.window_start,
                      window.subject, exc)
        problem = self.burns.on_window(merged) if self.burns else None
        if problem:
            log.error("%s", problem)
        return self.outbox.merged_window(f"{window.lens}|{window.subject}|{window.window_start}", merged)

    def _burn_alerts(self, history: list[tuple[float, list]]) -> list[dict]:
        if not self.burns:
            return []
        assert self.merger is not None and self.correlator is not None
        self.burns.on_complete(self.merger.complete_until(BurnStep.LENS))
        alerts = self.burns.release(self.correlator.decided_until, history)
        self.metrics.observe_slo(self.burns.engine.gauges())
        return alerts

    def _decide(self) -> list[dict]:
        assert self.merger is not None and self.correlator is not None
        alerts = []
        for lens in self.lenses:
            until = self.merger.complete_until(lens)
            if until is not None:
                alerts += self.correlator.on_lens_complete(lens, until)
        self.metrics.observe_correlator(self.correlator.active_alerts(), self.correlator.correlations(),
                                        self.correlator.late_windows)
        return alerts

    def _merge(self, window: Released) -> dict | None:
        try:
            merged = self.lenses[window.lens].merge(window.partials)
        except Exception as exc:  # noqa: BLE001 - a partial no lens wrote: the window is skipped, logged
            log.error("cannot merge %s window %s of %s: %s", window.lens, window.window_start, window.subject, exc)
            return None
        self.observers[window.lens](merged)
        return merged
