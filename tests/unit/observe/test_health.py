"""The stall decision, the progress reports behind it and the probe answers."""
from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from types import SimpleNamespace

from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, MessageSizeTooLargeError
from prometheus_client import CollectorRegistry

from app.core.health import SourceProgress, decide
from app.faust.runtime import crash_hint
from app.observe.health import Progress
from app.observe.http import probe
from app.observe.metrics import Metrics, serve
from app.settings import Settings

T0_S = 1_767_225_600.0


def test_idle_is_not_stalled_however_old_the_last_progress() -> None:
    health = decide({"sre": SourceProgress(None, T0_S - 86400)}, T0_S, 30)
    assert not health.stalled and health.progress_age_s == 0.0


def test_waiting_input_without_durable_progress_stalls_after_the_limit() -> None:
    sources = {"sre": SourceProgress(T0_S, T0_S - 500), "cx": SourceProgress(None, T0_S)}
    assert not decide(sources, T0_S + 30, 30).stalled  # not more than the limit yet
    health = decide(sources, T0_S + 31, 30)
    assert health.stalled and health.progress_age_s == 31
    assert health.reason.startswith("sre:") and "LENSBRIDGE_STALL_SECONDS=30" in health.reason


def test_the_clock_starts_at_the_later_of_waiting_and_progress() -> None:
    # Input waits since T0, but a write became durable at T0 + 20: a busy worker is healthy.
    assert not decide({"sre": SourceProgress(T0_S, T0_S + 20)}, T0_S + 45, 30).stalled
    assert decide({"sre": SourceProgress(T0_S, T0_S + 20)}, T0_S + 51, 30).stalled


def test_the_oldest_waiting_source_names_the_stall() -> None:
    sources = {"sre": SourceProgress(T0_S, T0_S), "joiner": SourceProgress(T0_S - 40, T0_S - 40)}
    health = decide(sources, T0_S + 10, 30)
    assert health.stalled and health.reason.startswith("joiner:") and health.progress_age_s == 50


def _progress() -> tuple[Progress, SimpleNamespace]:
    clock = SimpleNamespace(now_s=T0_S)
    return Progress(30, lambda: clock.now_s), clock


def test_progress_reports_drive_the_decision() -> None:
    progress, clock = _progress()
    progress.waiting("sre", True)
    clock.now_s += 31
    assert progress.check().stalled
    progress.durable("sre")  # something became durable: the clock starts again
    assert not progress.check().stalled
    clock.now_s += 31
    assert progress.check().stalled
    progress.waiting("sre", False)  # caught up: nothing waits
    assert not progress.check().stalled


def test_input_arriving_after_a_long_idle_is_not_a_stall() -> None:
    progress, clock = _progress()
    progress.durable("sre")
    progress.waiting("sre", False)
    clock.now_s += 3600
    progress.waiting("sre", True)
    clock.now_s += 5
    assert not progress.check().stalled
    progress.waiting("sre", True)  # still waiting: the start does not move
    clock.now_s += 26
    assert progress.check().stalled


def test_probe_answers() -> None:
    ok, stalled = decide({}, T0_S, 30), decide({"sre": SourceProgress(T0_S - 60, T0_S - 60)}, T0_S, 30)
    assert probe("/healthz", ok, ready=False)[0] == 200  # alive while recovering
    status, body = probe("/readyz", ok, ready=False)
    assert status == 503 and body["status"] == "not ready"
    assert probe("/readyz", ok, ready=True)[0] == 200
    for path in ("/healthz", "/readyz"):
        status, body = probe(path, stalled, ready=True)
        assert status == 503 and body["status"] == "stalled" and body["progress_age_seconds"] == 60


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(port: int, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_the_server_tells_the_paths_apart_and_sets_the_gauges() -> None:
    metrics, (progress, clock) = Metrics(CollectorRegistry()), _progress()
    port = _free_port()
    server = serve(metrics, port, "127.0.0.1", health=progress.check)
    try:
        status, body = _get(port, "/metrics")
        assert status == 200 and b"lensbridge_stalled 0.0" in body
        assert _get(port, "/readyz")[0] == 503  # lensbridge_ready is 0
        metrics.ready.set(1)
        assert _get(port, "/readyz")[0] == 200 and _get(port, "/healthz")[0] == 200
        progress.waiting("cx", True)
        clock.now_s += 45
        status, body = _get(port, "/healthz")
        assert status == 503 and json.loads(body)["reason"].startswith("cx:")
        assert b"lensbridge_stalled 1.0" in _get(port, "/metrics")[1]
        assert b"lensbridge_progress_age_seconds 45.0" in _get(port, "/metrics")[1]
        assert _get(port, "/table")[0] == 404
    finally:
        server.shutdown()
        server.server_close()


def test_a_write_that_outwaited_the_outage_budget_names_the_setting() -> None:
    settings = Settings.from_env({"LENSBRIDGE_BROKER_OUTAGE_SECONDS": "120", "KAFKA_BOOTSTRAP_SERVERS": "k:9092"})
    try:
        try:
            raise KafkaTimeoutError("Batch for TopicPartition(...) made no progress")
        except KafkaTimeoutError as exc:
            raise RuntimeError("gather failed") from exc
    except RuntimeError as wrapped:
        hint = crash_hint(wrapped, settings)
    assert "LENSBRIDGE_BROKER_OUTAGE_SECONDS=120 s" in hint and "KAFKA_BOOTSTRAP_SERVERS=k:9092" in hint
    assert "last error: KafkaConnectionError" in crash_hint(KafkaConnectionError("refused"), settings)
    assert crash_hint(ValueError("a bug"), settings) == ""
    assert crash_hint(MessageSizeTooLargeError(), settings) == "", "not an outage: no retry would help"


def test_settings_for_outages_and_the_metrics_address() -> None:
    defaults = Settings.from_env({})
    assert (defaults.broker_outage_s, defaults.stall_s, defaults.metrics_bind) == (300.0, 30.0, "0.0.0.0")
    s = Settings.from_env({"LENSBRIDGE_BROKER_OUTAGE_SECONDS": "600", "LENSBRIDGE_STALL_SECONDS": "10",
                           "LENSBRIDGE_METRICS_BIND": "127.0.0.1"})
    assert (s.broker_outage_s, s.stall_s, s.metrics_bind) == (600.0, 10.0, "127.0.0.1")
    for env, variable in (({"LENSBRIDGE_BROKER_OUTAGE_SECONDS": "1"}, "LENSBRIDGE_BROKER_OUTAGE_SECONDS"),
                          ({"LENSBRIDGE_STALL_SECONDS": "soon"}, "LENSBRIDGE_STALL_SECONDS"),
                          ({"LENSBRIDGE_METRICS_BIND": " "}, "LENSBRIDGE_METRICS_BIND")):
        try:
            Settings.from_env(env)
        except ValueError as exc:
            assert variable in str(exc)
        else:
            raise AssertionError(f"{env} accepted")

