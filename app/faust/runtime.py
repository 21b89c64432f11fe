"""The Faust agents, timers and rebalance/shutdown hooks around the runners.

Each agent iterates its stream event by event with manual acks and hands every event
to its runner; a timer ticks each runner every second. Anything a runner raises is a
Kafka or state-store failure (a message cannot raise: agents/safety.py), and the worker
exits so it restarts from durable state.
"""
from __future__ import annotations

import asyncio
import logging
import os
import sys
from typing import Any

import faust
from aiokafka.errors import KafkaError, KafkaTimeoutError
from faust.types import TP

from agents.joiner import JoinerRunner
from agents.lens import LensRunner
from app.core.joiner_table import SUMMARIES_PARTITION
from app.observe.metrics import Metrics
from app.settings import Settings

log = logging.getLogger("lensbridge")

SHUTDOWN_SETTLE_S = 8.0  # a drain takes ~1 s; orchestrators give 10 s or more (docs/OPERATIONS.md)


def _crash(where: str, settings: Settings | None = None) -> None:
    # State is durable and unacked input is re-read on restart: dying is the safe way out of an
    # unexpected failure (a silently stopped agent would stall the stream while /metrics looks fine).
    hint = crash_hint(sys.exc_info()[1], settings)
    log.critical("%s failed%s; exiting so the worker restarts from durable state", where, hint, exc_info=True)
    logging.shutdown()
    os._exit(70)


def crash_hint(exc: BaseException | None, settings: Settings | None) -> str:
    """Why, for a person: a write that still failed on a retriable Kafka error (connection
    refused, no leader, timed out) outwaited the outage budget; say which setting that is."""
    while exc is not None:
        if isinstance(exc, KafkaTimeoutError) or (isinstance(exc, KafkaError) and exc.retriable):
            budget = f"={settings.broker_outage_s:g} s" if settings else ""
            where = f"={settings.bootstrap_servers}" if settings else ""
            return (f": Kafka did not take a write within LENSBRIDGE_BROKER_OUTAGE_SECONDS{budget} "
                    f"(last error: {type(exc).__name__}; broker down or unreachable at "
                    f"KAFKA_BOOTSTRAP_SERVERS{where}); bring it back, or raise "
                    f"LENSBRIDGE_BROKER_OUTAGE_SECONDS to ride out longer outages")
        exc = exc.__cause__ or exc.__context__
    return ""


def lens_agent(app: faust.App, runner: LensRunner, topic: faust.TopicT) -> None:
    async def lens_agent(stream):
        manual = stream.noack()
        async for event in manual.events():
            try:
                await runner.on_event(manual, event)
            except Exception:  # a message cannot raise here (agents/safety.py): Kafka or the state store
                _crash(f"{runner.lens.name} lens agent", runner.settings)

    app.agent(topic, name=f"lensbridge.{runner.lens.name}")(lens_agent)

    @app.timer(1.0, name=f"lensbridge.{runner.lens.name}.tick")
    async def tick() -> None:
        if app.rebalancing or not app.tables.recovery.completed.is_set():
            return
        tps = [tp for tp in app.consumer.assignment() if tp.topic == runner.lens.topic]
        try:
            # The high watermark the fetcher last saw (no broker round trip: a ListOffsets call
            # through Faust's consumer thread takes seconds while a fetch is in progress).
            ends = {tp.partition: app.consumer.highwater(tp) for tp in tps}
            await runner.tick({tp.partition for tp in tps},
                              {p: end for p, end in ends.items() if end is not None})
        except Exception:
            _crash(f"{runner.lens.name} lens timer", runner.settings)


def joiner_agent(app: faust.App, joiner: JoinerRunner, topic: faust.TopicT) -> None:
    async def joiner_agent(stream):
        manual = stream.noack()
        async for event in manual.events():
            try:
                await joiner.on_event(manual, event)
            except Exception:
                _crash("joiner agent", joiner.settings)

    app.agent(topic, name="lensbridge.joiner")(joiner_agent)

    @app.timer(1.0, name="lensbridge.joiner.tick")
    async def tick() -> None:
        if app.rebalancing or not app.tables.recovery.completed.is_set():
            return
        summaries = TP(joiner.settings.topic_summaries, SUMMARIES_PARTITION)
        try:
            owned = summaries in app.consumer.assignment()
            await joiner.tick(app.consumer.highwater(summaries) if owned else None)
        except Exception:
            _crash("joiner timer", joiner.settings)


def lifecycle(app: faust.App, runners: list[LensRunner], joiner: JoinerRunner, metrics: Metrics) -> None:
    @app.on_partitions_revoked.connect
    async def on_revoked(sender, revoked, **kwargs) -> None:
        metrics.ready.set(0)
        metrics.joiner_active.set(0)
        for runner in runners:
            runner.forget()
        joiner.forget()

    @app.on_rebalance_complete.connect
    async def on_recovered(sender, **kwargs) -> None:
        # Who owns what, for operators (and the scale-out tests): the summaries partition is
        # where the joiner runs.
        assignment = app.consumer.assignment()
        metrics.joiner_active.set(int(TP(joiner.settings.topic_summaries, 0) in assignment))
        for runner in runners:
            metrics.assigned.labels(runner.lens.topic).set(
                sum(1 for tp in assignment if tp.topic == runner.lens.topic))
        metrics.ready.set(1)

    @app.on_before_shutdown.connect
    async def on_shutdown(sender, **kwargs) -> None:
        # SIGTERM (rolling restart): the fetcher is stopped, the consumer not yet. Fold, checkpoint,
        # ack and commit what is buffered, so the next owner starts exactly where this worker
        # stopped. Bounded: after a crash inside Faust the consumer thread may be gone, and a
        # commit through it would wait forever (CI: a worker hung in shutdown).
        metrics.ready.set(0)
        await settle_on_shutdown(runners, joiner, SHUTDOWN_SETTLE_S)


async def settle_on_shutdown(runners: list, joiner: Any, timeout_s: float) -> bool:
    """Drain, ack and commit every runner within `timeout_s`; False if that ran out."""
    try:
        await asyncio.wait_for(_settle(runners, joiner), timeout_s)
        return True
    except asyncio.TimeoutError:
        log.warning("shutdown: buffered input not settled within %.1f s; the next owner reads it "
                    "again from the last commit", timeout_s)
        return False


async def _settle(runners: list, joiner: Any) -> None:
    for runner in runners:
        try:
            await runner.drain()
        except Exception:  # nothing is acked then: the next owner reads it again
            log.warning("%s: flush on shutdown failed", runner.lens.name, exc_info=True)
    try:
        await joiner.ack_durable()
        await joiner.commit_durable()
    except Exception:
        log.warning("joiner: settling acks on shutdown failed", exc_info=True)
