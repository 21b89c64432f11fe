"""The Faust app: topics, tables, agents and timers, built from the settings.

Built by a function (not at import time) so settings, metrics registry and clock
are injected. Agents only move data; the maths is in `app/core`.
"""
from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from typing import Any, Callable

import faust
from aiokafka.errors import KafkaError, KafkaTimeoutError
from faust.types import TP

from agents.joiner import JoinerRunner
from agents.lens import LensRunner
from app.faust import backoff as kafka_backoff, memory_store
from app.observe.health import Progress
from app.lenses import lenses
from app.observe.metrics import Metrics
from app.faust.outbox import SUMMARIES_PARTITION, Outbox
from app.kafka.client import faust_credentials
from app.settings import Settings
from app.faust.store import TableStore
from app.core import sizes
from app.kafka.topic_sizes import changelog_topic, producer_max_request_size, record_limits, topic_configs

log = logging.getLogger("lensbridge")

RAW = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw", "value_serializer": "raw"}
MAX_STATE_BYTES = sizes.MAX_STATE_BYTES  # topic limits follow it (app/core/sizes.py)
PRODUCER_BATCH_BYTES = sizes.PRODUCER_BATCH_BYTES
SHUTDOWN_SETTLE_S = 8.0  # a drain takes ~1 s; orchestrators give 10 s or more (docs/OPERATIONS.md)
TABLE_RAW = {"key_type": bytes, "value_type": bytes}  # tables derive the raw codec from the types


def broker_urls(bootstrap_servers: str) -> list[str]:
    return [f"kafka://{host.strip()}" for host in bootstrap_servers.split(",") if host.strip()]


def _security(settings: Settings) -> dict:
    """Faust broker credentials for KAFKA_SECURITY_PROTOCOL (PLAINTEXT needs none): the same
    options as every other client of the project (app/kafka/client.py)."""
    credentials = faust_credentials(settings)
    return {"broker_credentials": credentials} if credentials is not None else {}


def _replicas(settings: Settings) -> int:
    if settings.replication_factor < 1:
        raise ValueError("LENSBRIDGE_REPLICATION_FACTOR=-1 must be resolved first (topics.with_replication_factor)")
    return settings.replication_factor


def build_app(settings: Settings, metrics: Metrics, clock: Callable[[], float] = time.time,
              slos: list | None = None, progress: Progress | None = None) -> faust.App:
    progress = progress or Progress(settings.stall_s, clock)
    kafka_backoff.install()  # no busy loop (and log flood) while the broker is away
    app = faust.App(
        settings.app_id,
        broker=broker_urls(settings.bootstrap_servers),
        # Faust's memory store, fixed so standby replicas spare a takeover the full changelog replay.
        store=memory_store.register(),
        datadir=settings.data_dir,
        autodiscover=False,
        topic_partitions=settings.partitions,
        consumer_auto_offset_reset="earliest",
        stream_wait_empty=False,
        table_standby_replicas=settings.standby_replicas,
        producer_acks=-1,
        # At least every topic's max.message.bytes: the outbox refuses larger records before
        # they reach aiokafka (whose own refusal would kill Faust's producer task).
        producer_max_request_size=producer_max_request_size(settings),
        # A send waits (aiokafka retries with backoff, in order per partition) this long for an
        # unreachable broker, then fails and the worker exits (`_crash`); Faust's default is 20 min.
        producer_request_timeout=settings.broker_outage_s,
        # aiokafka sends one batch per partition per request: at Faust's 16 KB default a flush
        # of ten 10 KB state values takes ten round trips on its changelog partition.
        producer_max_batch_size=PRODUCER_BATCH_BYTES,
        # Faust's 1 MB starves the agent on batched input (0.45 of a core busy at 37k events/s;
        # 95k at 16 MB); with standbys it stays 1 MB (Settings.fetch_bytes says why).
        consumer_max_fetch_size=settings.fetch_bytes,
        broker_commit_interval=settings.commit_interval_s,
        broker_commit_every=settings.commit_every_messages,
        # How long a dead worker keeps its partitions before the group moves them on.
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=min(3.0, settings.session_timeout_s / 3),
        # Nothing in lensbridge uses Faust's web server (/metrics has its own): off unless
        # LENSBRIDGE_WEB_ENABLED, then on loopback by default, and never with the views that
        # expose tables, routing or internals.
        web_enabled=settings.web_enabled,
        web_bind=settings.web_bind,
        web_port=settings.web_port,
        web_tables_enabled=False,  # /table views would expose table contents
        web_router_enabled=False,
        web_graph_enabled=False,
        web_stats_enabled=False,
        # Changelogs and any topic Faust declares (resolved from the broker for -1: app/kafka/topics.py).
        topic_replication_factor=_replicas(settings),
        **_security(settings),
    )
    lens_by_name = lenses(settings)
    outbox = Outbox(
        summaries=app.topic(settings.topic_summaries, partitions=1, **RAW),
        windows=app.topic(settings.topic_windows, **RAW),
        alerts=app.topic(settings.topic_alerts, **RAW),
        dlq=app.topic(settings.topic_dlq, **RAW),
        limits=record_limits(settings), metrics=metrics, clock=clock,
    )
    async def seek(topic: str, partition: int, offset: int) -> None:
        # On the consumer's own thread: Faust's `consumer.seek` calls aiokafka from this one, and
        # its fetcher, iterating the same buffers on the consumer thread, then crashed with a
        # KeyError (CI: two-hour crash test; the worker hung in shutdown).
        await app.consumer.seek_wait({TP(topic, partition): offset})

    async def commit(topic: str, positions: dict[int, int]) -> None:
        await _commit_positions(app.consumer, topic, positions)

    runners = []
    for lens in lens_by_name.values():
        # A CX slot at its id caps is ~4.8 MB (app/core/lenses/idset.py): over the broker's 1 MB default.
        changelog = changelog_topic(settings, f"{lens.name}-state")
        table = app.Table(f"{lens.name}-state", partitions=settings.partitions, **TABLE_RAW,
                          extra_topic_configs=topic_configs(settings, changelog))  # max.message.bytes
        runner = LensRunner(lens, settings, TableStore(table), outbox, metrics, clock, seek, commit=commit,
                            rebalances=lambda: app.rebalancing_count, progress=progress)
        _lens_agent(app, runner, app.topic(lens.topic, partitions=settings.partitions, **RAW))
        runners.append(runner)
    # The correlator's state (baselines, incidents): one value of ~10 KB per subject.
    joiner_table = app.Table("joiner-state", partitions=1, **TABLE_RAW,
                             extra_topic_configs=topic_configs(settings, changelog_topic(settings, "joiner-state")))
    joiner = JoinerRunner(lens_by_name, settings, TableStore(joiner_table), outbox, metrics, clock, seek, slos,
                          commit=commit, rebalances=lambda: app.rebalancing_count, progress=progress)
    _joiner_agent(app, joiner, app.topic(settings.topic_summaries, partitions=1, **RAW))
    _lifecycle(app, runners, joiner, metrics)
    return app


async def _commit_positions(consumer, topic: str, positions: dict[int, int]) -> None:
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


def _lens_agent(app: faust.App, runner: LensRunner, topic: faust.TopicT) -> None:
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


def _joiner_agent(app: faust.App, joiner: JoinerRunner, topic: faust.TopicT) -> None:
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


def _lifecycle(app: faust.App, runners: list[LensRunner], joiner: JoinerRunner, metrics: Metrics) -> None:
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
