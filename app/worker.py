"""`lensbridge worker`: metrics endpoint first, topics checked, then the Faust worker."""
from __future__ import annotations

import asyncio
import logging
import sys

from prometheus_client import CollectorRegistry

from app.config import load_slo_file
from app.core.slo.engine import SloConfigError
from app.kafka.client import explain_failure
from app.kafka.topics import TopicLayoutError, ensure_topics, with_replication_factor
from app.observe.health import Progress
from app.observe.metrics import Metrics, serve
from app.settings import Settings

log = logging.getLogger("lensbridge.worker")


def run_worker(settings: Settings) -> int:
    from app.faust.app import build_app, run_app  # heavy imports, only for the worker

    try:
        slos = load_slo_file(settings.slo_file, settings.window_s)
    except SloConfigError as exc:
        print(f"lensbridge worker: bad SLO file (LENSBRIDGE_SLO_FILE):\n{exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"lensbridge worker: cannot read LENSBRIDGE_SLO_FILE={settings.slo_file!r}: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    metrics = Metrics(CollectorRegistry(), settings.max_label_values, settings.label_idle_s)
    progress = Progress(settings.stall_s)
    # Served from its own thread and port, so Prometheus can scrape during table recovery.
    serve(metrics, settings.metrics_port, settings.metrics_bind, health=progress.check)
    log.info("metrics on http://%s:%d/metrics (health: /healthz, /readyz)", settings.metrics_bind,
             settings.metrics_port)
    try:
        settings = asyncio.run(with_replication_factor(settings))  # -1: the broker's default
        created = asyncio.run(ensure_topics(settings))
    except TopicLayoutError as exc:
        print(f"lensbridge worker: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # unreachable, untrusted or refused: say which setting to fix
        print(f"lensbridge worker: {explain_failure(exc, settings)}", file=sys.stderr)
        return 2
    if created:
        log.info("created topics: %s", ", ".join(created))
    app = build_app(settings, metrics, slos=slos, progress=progress)
    run_app(app, settings.log_level)
    return 0
