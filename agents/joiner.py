"""The joiner agent: summaries topic -> merged windows -> gauges, merged-window topic, alerts.

The summaries topic has one partition, so one joiner sees every partial. Its
state (pending partials, watermarks per lens and partition) lives in a table
written before the record is acked; merged windows are published under a
stable key, so a re-send after a crash replaces itself downstream. Table writes
are not awaited one record at a time: up to `MAX_UNACKED_RECORDS` records wait,
in order, for their writes to land before they are acked (one changelog partition
keeps them in order, and each write carries the next offset to read). Like the
lens runners, it commits its durable position itself every `commit_interval_s`
and on SIGTERM.
"""
from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any, Callable

import orjson

from app.core.detect import corr_state

from app.core.lenses import cx
from app.core.detect.correlate import Correlator
from app.config import detection_config
from app.core.slo.burn_step import BurnStep
from app.core.ingest.decode import NOT_JSON, Rejected
from app.core.windows.merger import Released, WindowMerger, record_problem
from app.core.windows.offsets import Action, OffsetGuard
from app.observe.health import Progress
from app.lenses import Lens
from app.observe.metrics import Metrics
from app.faust.outbox import SUMMARIES_PARTITION, Outbox
from app.settings import Settings
from app.faust.store import TableStore, wait_all
from agents import safety
from agents.corr_table import LEGACY_CORRELATOR, CorrelatorTable
from agents.lens import Commit, Seek

log = logging.getLogger("lensbridge.joiner")

NEXT_OFFSET = "next"  # table key: the next summaries offset the joiner needs
# The correlator's state (baselines, open incidents) is under `corr|...` keys, one per
# (lens, subject): agents/corr_table.py.
BURNS = "slo"  # table key: SLO burn state and burn alerts waiting for their CX check
TTI_QUANTILES = (0.5, 0.75, 0.95)
MAX_UNACKED_RECORDS = 256  # records whose table writes may be in flight at once


def _partial_key(record: dict) -> str:
    return f"p|{record['lens']}|{record['window_start']}|{record['partition']}|{record['subject']}"


class JoinerRunner:
    def __init__(self, lenses: dict[str, Lens], settings: Settings, store: TableStore, outbox: Outbox,
                 metrics: Metrics, clock: Callable[[], float], seek: Seek, slos: list | None = None, *,
                 commit: Commit, rebalances: Callable[[], int] = lambda: 0, progress: Progress | None = None):
        self.progress = progress or Progress(settings.stall_s, clock)  # for /healthz: durable progress
        self.lenses, self.settings, self.store, self.seek, self.commit = lenses, settings, store, seek, commit
        self.slos = slos or []
        self.burns: BurnStep | None = None
        self.outbox, self.metrics, self.clock = outbox, metrics, clock
        self.merger: WindowMerger | None = None
        self.correlator: Correlator | None = None
        self.corr_table = CorrelatorTable()  # the correlator's keys in the table
        self.rolling: dict[str, deque] = {}
        self.guard = OffsetGuard(0)
        self.last_seek: tuple[str, int, float] | None = None
        # Bumped by forget(): a record whose handling straddles a rebalance stops at its next
        # await, unacked and with no further writes; whoever owns the joiner then reads it again.
        self.generation = 0
        self.unacked: deque[tuple[list, Any, int]] = deque()  # (write futures, event, rebalances), in order
        self.stream: Any = None
        self.ack_lock = asyncio.Lock()
        self.rebalances = rebalances  # as in LensRunner: no ack once a rebalance began since
        # (next summaries offset whose effects are all durable, rebalance count when known)
        self.durable: tuple[int, int] | None = None
        self.committed_at_s = clock()

    def _restore(self) -> WindowMerger:
        merger = WindowMerger(self.settings.window_s, self.settings.partitions)
        self.guard = OffsetGuard(0)
        burn_state, corr_values = None, {}
        for key, raw in self.store.items(""):
            if key == NEXT_OFFSET:
                self.guard = OffsetGuard(orjson.loads(raw))
                continue
            if key == LEGACY_CORRELATOR or key.startswith(corr_state.PREFIX):
                corr_values[key] = orjson.loads(raw)
                continue
            if key == BURNS:
                burn_state = orjson.loads(raw)
                continue
            kind, lens, *rest = key.split("|", 2)
            if kind == "wm":
                merger.watermarks.setdefault(lens, {})[int(rest[0])] = orjson.loads(raw)
            elif kind == "rel":
                merger.released_until[lens] = orjson.loads(raw)
            elif kind == "p":
                partial = orjson.loads(raw)
                merger.pending.setdefault((lens, partial["subject"], partial["window_start"]), {})[
                    partial["partition"]] = partial
        self.corr_table = CorrelatorTable()
        self.correlator = self.corr_table.restore(corr_values, detection_config(self.settings))
        self.burns = BurnStep(self.slos, self.settings.window_s, burn_state,
                              self.settings.cx_rolling_windows) if self.slos else None
        if self.burns and self.burns.reset_reason:
            log.warning("SLO state not reusable (%s); starting fresh", self.burns.reset_reason)
        # Partials of windows already released are leftovers of a crash during their deletion.
        for key in [k for k in merger.pending
                    if k[2] + merger.window_s <= merger.released_until.get(k[0], float("-inf"))]:
            del merger.pending[key]
        if self.guard.next_offset > 0:
            self.durable = (self.guard.next_offset, self.rebalances())
        log.info("joiner restored: %d pending windows", len(merger.pending))
        return merger

    def forget(self) -> None:
        self.generation += 1
        self.unacked.clear()  # never acked: whoever owns the joiner next reads them again
        self.progress.waiting("joiner", False)  # as LensRunner.forget: recovery is not a stall
        self.durable = None
        self.merger = None
        self.correlator = None
        self.rolling.clear()
        # Another worker may run the joiner after this rebalance: its gauges are not ours to show.
        self.metrics.clear_joiner_gauges()

    async def on_event(self, stream: Any, event: Any) -> None:
        """One summaries record; acked only once its effect is in the table."""
        generation = self.generation
        if self.merger is None:
            self.merger = self._restore()
            await self._release()  # windows completed before a crash but not yet published
            if generation != self.generation:
                return
        message = event.message
        action = self.guard.check(message.offset)
        if action is Action.DUPLICATE:
            await stream.ack(event)
            self.progress.durable("joiner")
        elif action is Action.SEEK:
            log.warning("joiner: summaries offset %d delivered but %d is next; seeking back",
                        message.offset, self.guard.next_offset)
            await self.seek(message.topic, message.partition, self.guard.next_offset)
            self.last_seek = (message.topic, message.partition, self.clock())
        elif action is Action.PROCESS:
            writes = await self._on_record(message)
            if generation == self.generation:
                self.stream = stream
                if not self.unacked:
                    self.progress.waiting("joiner", True)
                self.unacked.append((writes, event, self.rebalances()))
                await self.ack_durable(MAX_UNACKED_RECORDS)

    async def ack_durable(self, keep: int = 0) -> None:
        """Ack records in order once their writes landed; wait for the oldest while more than
        `keep` are waiting (`keep=0`: settle everything)."""
        async with self.ack_lock:  # the agent and the timer both ack: one at a time, in order
            generation = self.generation
            while self.unacked and (len(self.unacked) > keep or all(f.done() for f in self.unacked[0][0])):
                writes, event, rebalances = self.unacked[0]
                await wait_all(writes)
                if generation != self.generation or self.rebalances() != rebalances:
                    return  # forget() follows and drops it: the next owner reads it again
                self.unacked.popleft()
                await self.stream.ack(event)
                if generation == self.generation:
                    self.durable = (event.message.offset + 1, rebalances)
                    self.progress.durable("joiner")

    async def commit_durable(self) -> None:
        """Commit the durable position (LensRunner.commit_durable says why), unless a rebalance
        began since it was learnt."""
        if self.durable is not None and self.durable[1] == self.rebalances():
            await self.commit(self.settings.topic_summaries, {SUMMARIES_PARTITION: self.durable[0]})

    async def tick(self, end_offset: int | None = None) -> None:
        """Ack what became durable, and repeat a seek that Faust's fetcher may have overwritten
        with the batch it was draining. `end_offset`: the summaries partition's end, if owned
        (unread records there mean input waits)."""
        await self.ack_durable()
        # Before its first record the joiner has not restored its position: it cannot tell.
        self.progress.waiting("joiner", bool(self.unacked) or (
            end_offset is not None and self.merger is not None and self.guard.next_offset < end_offset))
        now_s = self.clock()
        if now_s - self.committed_at_s >= self.settings.commit_interval_s:
            self.committed_at_s = now_s
            await self.commit_durable()
        if self.last_seek and self.guard.seeking and self.clock() - self.last_seek[2] >= 1.0:
            topic, partition, _ = self.last_seek
            await self.seek(topic, partition, self.guard.next_offset)
            self.last_seek = (topic, partition, self.clock())

    def _parse(self, message: Any) -> tuple[dict | None, bool, list]:
        """(record, changed, dead letter in flight); a record the merger cannot take is dead-lettered."""
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

    async def _on_record(self, message: Any) -> list:
        """Apply one record; returns its table writes (and dead letter) in flight, awaited before its ack."""
        writes: dict[str, bytes | None] = {}
        record, changed, dead_letters = self._parse(message)
        if changed and record.get("type") == "watermark":
            writes[f"wm|{record['lens']}|{record['partition']}"] = orjson.dumps(record["watermark"])
        elif changed:
            writes[_partial_key(record)] = message.value
        # Written in this order on one changelog partition: if the offset landed, so did the record.
        writes[NEXT_OFFSET] = orjson.dumps(self.guard.next_offset)
        futures = self.store.write(SUMMARIES_PARTITION, writes) + dead_letters
        if changed and record.get("type") == "watermark":
            await self._release()
        return futures

    async def _release(self) -> None:
        released = self.merger.release()
        if not released:
            return
        sends, writes = [], {}
        for window in released:
            merged = self._merge(window)
            for partial in window.partials:
                writes[_partial_key(partial)] = None
            if merged is None:
                continue
            sends.append(self.outbox.merged_window(f"{window.lens}|{window.subject}|{window.window_start}", merged))
            try:
                self.correlator.on_window(merged)
            except ValueError as exc:
                log.error("correlator rejected %s window %s of %s: %s", window.lens, window.window_start,
                          window.subject, exc)
            if self.burns and window.lens == "sre":
                problem = self.burns.on_sre_window(merged)
                if problem:
                    log.error("%s", problem)
        decided = self._decide()
        for alert in decided + self._burn_alerts(self.correlator.take_active_history()):
            sends.append(self.outbox.alert(alert["alert_id"], alert))
            self.metrics.alerts.labels(alert["kind"], alert["status"]).inc()
        # Alerts first, state after: a crash in between re-sends identical alerts (same ids),
        # the reverse order could lose them. Then, in this order on one changelog partition:
        # correlator and SLO state, the release points, and only last the released partials'
        # deletions, so a crash part-way never leaves a window half deleted but not released.
        generation = self.generation
        await wait_all(sends)
        if generation != self.generation:
            return  # revoked meanwhile: the alerts went out, the next owner re-sends them (same ids)
        state = self.corr_table.writes(self.correlator)
        if self.burns:
            state[BURNS] = orjson.dumps(self.burns.to_state(), option=orjson.OPT_SORT_KEYS)
        for lens, until in self.merger.released_until.items():
            state[f"rel|{lens}"] = orjson.dumps(until)
        await self.store.write_and_wait(SUMMARIES_PARTITION, {**state, **writes})

    def _burn_alerts(self, history: list[tuple[float, list]]) -> list[dict]:
        if not self.burns:
            return []
        self.burns.on_complete(self.merger.complete_until("sre"))
        alerts = self.burns.release(self.correlator.decided_until, history)
        self.metrics.observe_slo(self.burns.engine.gauges())
        return alerts

    def _decide(self) -> list[dict]:
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
        if window.lens == "sre":
            self.metrics.observe_sre_window(merged, self.settings.latency_quantiles)
        else:
            self.metrics.observe_cx_window(merged, TTI_QUANTILES)
            self._roll_cx(merged)
            if self.burns:
                self.burns.on_cx_window(merged)
        return merged

    def _roll_cx(self, merged: dict) -> None:
        # The rolling view lives in memory: after a restart it refills within N windows.
        recent = self.rolling.setdefault(merged["subject"], deque(maxlen=self.settings.cx_rolling_windows))
        recent.append(merged)
        try:
            self.metrics.observe_cx_rolling(cx.rolling_cx(list(recent), TTI_QUANTILES), TTI_QUANTILES)
        except ValueError as exc:
            log.error("rolling CX view of %s: %s", merged["subject"], exc)
