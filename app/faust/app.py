"""The Faust app: topics, tables, agents and timers, built from the settings.

Built by a function (not at import time) so settings, metrics registry and clock
are injected. Agents only move data; the maths is in `app/core`.
"""
from __future__ import annotations

import time
from typing import Callable

import faust

from agents.joiner import JoinerRunner
from agents.lens import LensRunner
from app.core import sizes
from app.faust import backoff as kafka_backoff
from app.faust import memory_store
from app.faust.consumer import consumer_ports
from app.faust.credentials import faust_credentials
from app.faust.outbox import Outbox
from app.faust.runtime import joiner_agent, lens_agent, lifecycle
from app.faust.store import TableStore
from app.kafka.topic_sizes import changelog_topic, producer_max_request_size, record_limits, topic_configs
from app.lenses import lenses
from app.observe.health import Progress
from app.observe.metrics import Metrics
from app.settings import Settings

RAW = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw", "value_serializer": "raw"}
MAX_STATE_BYTES = sizes.MAX_STATE_BYTES  # topic limits follow it (app/core/sizes.py)
PRODUCER_BATCH_BYTES = sizes.PRODUCER_BATCH_BYTES
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


def app_options(settings: Settings) -> dict:
    """faust.App's options for these settings (besides the app id)."""
    return dict(
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


def build_app(settings: Settings, metrics: Metrics, clock: Callable[[], float] = time.time,
              slos: list | None = None, progress: Progress | None = None) -> faust.App:
    progress = progress or Progress(settings.stall_s, clock)
    kafka_backoff.install()  # no busy loop (and log flood) while the broker is away
    app = faust.App(settings.app_id, **app_options(settings))
    lens_by_name = lenses(settings)
    outbox = Outbox(
        summaries=app.topic(settings.topic_summaries, partitions=1, **RAW),
        windows=app.topic(settings.topic_windows, **RAW),
        alerts=app.topic(settings.topic_alerts, **RAW),
        dlq=app.topic(settings.topic_dlq, **RAW),
        limits=record_limits(settings), metrics=metrics, clock=clock,
    )
    seek, commit = consumer_ports(app)
    ports = {"seek": seek, "commit": commit, "rebalances": lambda: app.rebalancing_count, "progress": progress}
    runners = []
    for lens in lens_by_name.values():
        runner = LensRunner(lens, settings, TableStore(_table(app, settings, f"{lens.name}-state")), outbox,
                            metrics, clock, **ports)
        lens_agent(app, runner, app.topic(lens.topic, partitions=settings.partitions, **RAW))
        runners.append(runner)
    # The correlator's state (baselines, incidents): one value of ~10 KB per subject.
    joiner = JoinerRunner(lens_by_name, settings, TableStore(_table(app, settings, "joiner-state", partitions=1)),
                          outbox, metrics, clock, slos=slos, **ports)
    joiner_agent(app, joiner, app.topic(settings.topic_summaries, partitions=1, **RAW))
    lifecycle(app, runners, joiner, metrics)
    return app


def _table(app: faust.App, settings: Settings, name: str, partitions: int | None = None) -> faust.Table:
    """A raw changelog-backed table whose changelog takes the largest state value: a CX slot at
    its id caps is ~4.8 MB (app/core/lenses/idset.py), over the broker's 1 MB default."""
    changelog = changelog_topic(settings, name)
    return app.Table(name, partitions=partitions or settings.partitions, **TABLE_RAW,
                     extra_topic_configs=topic_configs(settings, changelog))  # max.message.bytes


def run_app(app: faust.App, log_level: str) -> None:
    """Run the app's worker until it is stopped (SIGTERM, SIGINT)."""
    worker = faust.Worker(app, loglevel=log_level, quiet=True, redirect_stdouts=False)
    # At log levels above info Faust installs a terminal spinner and sets the root logger to
    # DEBUG to spin it on every record: every logger.debug in Faust and aiokafka then builds a
    # record (15-25 % more CPU per event, docs/BENCH.md). A service has no terminal to spin.
    worker.spinner = None
    worker.execute_from_commandline()
