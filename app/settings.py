"""One frozen settings object, read once from the environment.

Nothing reads the environment at import time: `Settings.from_env()` is called by
entrypoints (CLI, worker) and the result is passed down.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from app.core.ingest.fields import DEFAULT_MAX_LATENCY_MS, DEFAULT_MAX_SUBJECT_CHARS
from app.settings_parse import (
    SettingsError,
    parse_bool,
    parse_choice,
    parse_choices,
    parse_csv,
    parse_float,
    parse_int,
    parse_int_range,
    parse_quantiles,
    parse_replication,
    parse_status_ranges,
    parse_str,
)

# What the requests topic carries (README "Where requests come from").
REQUESTS_FORMATS = ("lensbridge", "otlp_proto", "otlp_json", "fields")
SPAN_KINDS = ("server", "consumer")  # OTLP span kinds that count as requests
OTLP_SPANS_TOPIC = "otlp_spans"  # the OpenTelemetry Collector kafka exporter's default traces topic


# Upper bounds of the decoder's caps: record sizes downstream are planned for them.
MAX_SUBJECT_CHARS_LIMIT = 4096
MAX_LATENCY_MS_LIMIT = 86_400_000.0 * 365  # a year

# field name -> (environment variable, parser); parsers take (variable, raw text).
_ENV: dict[str, tuple[str, Callable[[str, str], object]]] = {
    "bootstrap_servers": ("KAFKA_BOOTSTRAP_SERVERS", parse_str),
    "app_id": ("LENSBRIDGE_APP_ID", parse_str),
    "topic_requests": ("LENSBRIDGE_TOPIC_REQUESTS", parse_str),
    "requests_format": ("LENSBRIDGE_REQUESTS_FORMAT", lambda n, r: parse_choice(n, r, REQUESTS_FORMATS)),
    "requests_fields": ("LENSBRIDGE_REQUESTS_FIELDS", parse_str),
    "otlp_span_kinds": ("LENSBRIDGE_OTLP_SPAN_KINDS", lambda n, r: parse_choices(n, r, SPAN_KINDS)),
    "topic_rum": ("LENSBRIDGE_TOPIC_RUM", parse_str),
    "topic_summaries": ("LENSBRIDGE_TOPIC_SUMMARIES", parse_str),
    "topic_alerts": ("LENSBRIDGE_TOPIC_ALERTS", parse_str),
    "topic_dlq": ("LENSBRIDGE_TOPIC_DLQ", parse_str),
    "topic_windows": ("LENSBRIDGE_TOPIC_WINDOWS", parse_str),
    "security_protocol": ("KAFKA_SECURITY_PROTOCOL", parse_str),
    "sasl_mechanism": ("KAFKA_SASL_MECHANISM", parse_str),
    "sasl_username": ("KAFKA_SASL_USERNAME", parse_str),
    "sasl_password": ("KAFKA_SASL_PASSWORD", parse_str),
    "ssl_cafile": ("KAFKA_SSL_CAFILE", parse_str),
    "ssl_certfile": ("KAFKA_SSL_CERTFILE", parse_str),
    "ssl_keyfile": ("KAFKA_SSL_KEYFILE", parse_str),
    "partitions": ("LENSBRIDGE_PARTITIONS", lambda n, r: parse_int(n, r, 1)),
    "window_s": ("LENSBRIDGE_WINDOW_SECONDS", lambda n, r: parse_int(n, r, 1)),
    "grace_s": ("LENSBRIDGE_GRACE_SECONDS", lambda n, r: parse_float(n, r, 0.0)),
    "idle_s": ("LENSBRIDGE_IDLE_SECONDS", lambda n, r: parse_float(n, r, 0.1)),
    "max_open_windows": ("LENSBRIDGE_MAX_OPEN_WINDOWS", lambda n, r: parse_int(n, r, 1)),
    "max_subjects": ("LENSBRIDGE_MAX_SUBJECTS", lambda n, r: parse_int(n, r, 1)),
    "max_future_skew_s": ("LENSBRIDGE_MAX_FUTURE_SKEW_SECONDS", lambda n, r: parse_float(n, r, 0.0)),
    "max_message_bytes": ("LENSBRIDGE_MAX_MESSAGE_BYTES", lambda n, r: parse_int(n, r, 64)),
    "max_subject_chars": ("LENSBRIDGE_MAX_SUBJECT_CHARS", lambda n, r: parse_int_range(n, r, 1, MAX_SUBJECT_CHARS_LIMIT)),
    "max_latency_ms": ("LENSBRIDGE_MAX_LATENCY_MS", lambda n, r: parse_float(n, r, 1.0, MAX_LATENCY_MS_LIMIT)),
    "error_statuses": ("LENSBRIDGE_ERROR_STATUSES", parse_status_ranges),
    "digest_compression": ("LENSBRIDGE_DIGEST_COMPRESSION", lambda n, r: parse_int(n, r, 10)),
    "latency_quantiles": ("LENSBRIDGE_LATENCY_QUANTILES", parse_quantiles),
    "availability_slice_s": ("LENSBRIDGE_AVAILABILITY_SLICE_SECONDS", lambda n, r: parse_int(n, r, 1)),
    "availability_error_ratio": ("LENSBRIDGE_AVAILABILITY_ERROR_RATIO", lambda n, r: parse_float(n, r, 0.0, 1.0)),
    "cohort_keys": ("LENSBRIDGE_COHORT_KEYS", parse_csv),
    "cx_rolling_windows": ("LENSBRIDGE_CX_ROLLING_WINDOWS", lambda n, r: parse_int(n, r, 1)),
    "baseline_windows": ("LENSBRIDGE_BASELINE_WINDOWS", lambda n, r: parse_int(n, r, 1)),
    "min_baseline_windows": ("LENSBRIDGE_MIN_BASELINE_WINDOWS", lambda n, r: parse_int(n, r, 1)),
    "correlation_lag_windows": ("LENSBRIDGE_CORRELATION_LAG_WINDOWS", lambda n, r: parse_int(n, r, 0)),
    "resolve_windows": ("LENSBRIDGE_RESOLVE_WINDOWS", lambda n, r: parse_int(n, r, 1)),
    "flush_events": ("LENSBRIDGE_FLUSH_EVENTS", lambda n, r: parse_int(n, r, 1)),
    "flush_interval_s": ("LENSBRIDGE_FLUSH_INTERVAL_SECONDS", lambda n, r: parse_float(n, r, 0.01)),
    "consumer_fetch_bytes": ("LENSBRIDGE_CONSUMER_FETCH_BYTES", lambda n, r: parse_int(n, r, 0)),
    "metrics_port": ("LENSBRIDGE_METRICS_PORT", lambda n, r: parse_int(n, r, 0)),
    "metrics_bind": ("LENSBRIDGE_METRICS_BIND", parse_str),
    "broker_outage_s": ("LENSBRIDGE_BROKER_OUTAGE_SECONDS", lambda n, r: parse_float(n, r, 5.0, 86400.0)),
    "stall_s": ("LENSBRIDGE_STALL_SECONDS", lambda n, r: parse_float(n, r, 1.0, 86400.0)),
    "web_port": ("LENSBRIDGE_WEB_PORT", lambda n, r: parse_int(n, r, 0)),
    "data_dir": ("LENSBRIDGE_DATA_DIR", parse_str),
    "standby_replicas": ("LENSBRIDGE_STANDBY_REPLICAS", lambda n, r: parse_int(n, r, 0)),
    "slo_file": ("LENSBRIDGE_SLO_FILE", parse_str),
    "commit_interval_s": ("LENSBRIDGE_COMMIT_INTERVAL_SECONDS", lambda n, r: parse_float(n, r, 0.1)),
    "commit_every_messages": ("LENSBRIDGE_COMMIT_EVERY_MESSAGES", lambda n, r: parse_int(n, r, 1)),
    "session_timeout_s": ("LENSBRIDGE_SESSION_TIMEOUT_SECONDS", lambda n, r: parse_float(n, r, 6.0, 300.0)),
    "log_level": ("LENSBRIDGE_LOG_LEVEL", parse_str),
    "web_enabled": ("LENSBRIDGE_WEB_ENABLED", parse_bool),
    "web_bind": ("LENSBRIDGE_WEB_BIND", parse_str),
    "replication_factor": ("LENSBRIDGE_REPLICATION_FACTOR", parse_replication),
    "max_label_values": ("LENSBRIDGE_MAX_LABEL_VALUES", lambda n, r: parse_int(n, r, 1)),
    "label_idle_s": ("LENSBRIDGE_LABEL_IDLE_SECONDS", lambda n, r: parse_float(n, r, 1.0)),
}


_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
_SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


@dataclass(frozen=True)
class Settings:
    bootstrap_servers: str = "localhost:9092"
    app_id: str = "lensbridge"
    topic_requests: str = "requests"
    topic_rum: str = "rum-events"
    requests_format: str = "lensbridge"
    requests_fields: str = ""  # LENSBRIDGE_REQUESTS_FIELDS, the field map of format `fields`
    otlp_span_kinds: tuple[str, ...] = ("server",)
    topic_summaries: str = "lens-summaries"
    topic_alerts: str = "correlation-alerts"
    topic_dlq: str = "lensbridge-dlq"
    topic_windows: str = "lens-windows"
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str = "PLAIN"
    sasl_username: str = ""
    sasl_password: str = dataclasses.field(default="", repr=False)
    ssl_cafile: str = ""
    ssl_certfile: str = ""  # client certificate (PEM) for brokers that ask for one (mTLS)
    ssl_keyfile: str = ""  # its private key (PEM); empty: in KAFKA_SSL_CERTFILE
    partitions: int = 4
    window_s: int = 60
    grace_s: float = 10.0
    idle_s: float = 15.0
    max_open_windows: int = 8
    max_subjects: int = 10_000
    max_future_skew_s: float = 300.0
    max_message_bytes: int = 1_048_576
    # Longer service, cohort, session or view ids are dead-lettered `out_of_range`.
    max_subject_chars: int = DEFAULT_MAX_SUBJECT_CHARS
    # Larger latencies (and TTI, ms web vitals) are dead-lettered `out_of_range`: one hour.
    max_latency_ms: float = DEFAULT_MAX_LATENCY_MS
    error_statuses: str = "500-599"
    digest_compression: int = 500
    latency_quantiles: tuple[float, ...] = (0.5, 0.95, 0.99)
    availability_slice_s: int = 10
    availability_error_ratio: float = 0.05
    cohort_keys: tuple[str, ...] = ()
    cx_rolling_windows: int = 5
    baseline_windows: int = 30
    min_baseline_windows: int = 10
    correlation_lag_windows: int = 1
    resolve_windows: int = 2
    flush_events: int = 2000
    flush_interval_s: float = 0.5
    consumer_fetch_bytes: int = 0  # per partition and fetch; 0: see `fetch_bytes` (docs/BENCH.md)
    metrics_port: int = 9108
    metrics_bind: str = "0.0.0.0"  # the scrape target's address (/metrics, /healthz, /readyz)
    # How long a write may wait for an unreachable broker before the worker gives up and exits.
    broker_outage_s: float = 300.0
    stall_s: float = 30.0  # input waiting this long with nothing durable: /healthz says stalled
    web_port: int = 6066
    data_dir: str = ".lensbridge-data"
    standby_replicas: int = 0
    session_timeout_s: float = 30.0
    slo_file: str = ""  # SLO definitions (YAML); empty: no SLOs
    # Consumer offset commits: only how much a restart re-reads (correctness rests on the state's own offsets).
    commit_interval_s: float = 2.8
    commit_every_messages: int = 10_000
    log_level: str = "info"
    web_enabled: bool = False  # Faust's own web server (lensbridge needs none of it)
    web_bind: str = "127.0.0.1"  # where it listens when enabled
    replication_factor: int = -1  # topics and changelogs the worker creates; -1: the broker's default
    max_label_values: int = 500  # Prometheus label values per kind (services, cohorts)
    label_idle_s: float = 1800.0  # a label value unseen this long expires and its series are removed

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if env is None else env
        values: dict[str, Any] = {}  # each field's parser in _ENV gives that field's type
        for field, (variable, parse) in _ENV.items():
            if variable in env:
                values[field] = parse(variable, env[variable])
        if "topic_requests" not in values and values.get("requests_format", "").startswith("otlp_"):
            values["topic_requests"] = OTLP_SPANS_TOPIC
        settings = cls(**values)
        settings.check_requests_format()
        settings.check()
        settings.check_security()
        return settings

    @property
    def fetch_bytes(self) -> int:
        """Bytes per partition per fetch. Automatic (0): 16 MB without standby replicas, where
        batched input then runs 2.5x faster than at Faust's 1 MB; 1 MB with them, because a
        worker saturated by a deep backlog stops reading the standby changelogs in the same
        fetch loop (a promoted standby then replays nearly its whole changelog)."""
        if self.consumer_fetch_bytes:
            return self.consumer_fetch_bytes
        return (1 if self.standby_replicas else 16) * 1024 * 1024

    def check(self) -> None:
        if 0 < self.consumer_fetch_bytes < 65536:
            raise SettingsError(
                f"LENSBRIDGE_CONSUMER_FETCH_BYTES={self.consumer_fetch_bytes} is below 65536; "
                f"give 0 (automatic) or at least 64 KB per partition")
        if self.availability_slice_s > self.window_s or self.window_s % self.availability_slice_s:
            raise SettingsError(
                f"LENSBRIDGE_AVAILABILITY_SLICE_SECONDS={self.availability_slice_s} must divide "
                f"LENSBRIDGE_WINDOW_SECONDS={self.window_s}"
            )
        if self.min_baseline_windows > self.baseline_windows:
            raise SettingsError(
                f"LENSBRIDGE_MIN_BASELINE_WINDOWS={self.min_baseline_windows} exceeds "
                f"LENSBRIDGE_BASELINE_WINDOWS={self.baseline_windows}")
        if self.grace_s >= self.window_s * self.max_open_windows:
            raise SettingsError(
                f"LENSBRIDGE_GRACE_SECONDS={self.grace_s} keeps more windows open than "
                f"LENSBRIDGE_MAX_OPEN_WINDOWS={self.max_open_windows} allows; lower the grace or raise the cap"
            )

    def check_requests_format(self) -> None:
        if self.requests_format == "fields" and not self.requests_fields:
            raise SettingsError("LENSBRIDGE_REQUESTS_FORMAT=fields needs LENSBRIDGE_REQUESTS_FIELDS, e.g. "
                                "ts=start_time,service=upstream_cluster,latency_ms=duration:ms,status=response_code")
        if self.requests_fields and self.requests_format != "fields":
            raise SettingsError(f"LENSBRIDGE_REQUESTS_FIELDS is set but LENSBRIDGE_REQUESTS_FORMAT="
                                f"{self.requests_format}; set LENSBRIDGE_REQUESTS_FORMAT=fields to use it, "
                                "or unset it")

    def check_security(self) -> None:
        if self.security_protocol not in _PROTOCOLS:
            raise SettingsError(f"KAFKA_SECURITY_PROTOCOL={self.security_protocol!r} must be one of {', '.join(_PROTOCOLS)}")
        if self.security_protocol.startswith("SASL") and not (self.sasl_username and self.sasl_password):
            raise SettingsError(f"KAFKA_SECURITY_PROTOCOL={self.security_protocol} needs KAFKA_SASL_USERNAME "
                                "and KAFKA_SASL_PASSWORD")
        if self.security_protocol.startswith("SASL") and self.sasl_mechanism not in _SASL_MECHANISMS:
            raise SettingsError(f"KAFKA_SASL_MECHANISM={self.sasl_mechanism!r} must be one of "
                                f"{', '.join(_SASL_MECHANISMS)}")
        for variable, path in (("KAFKA_SSL_CAFILE", self.ssl_cafile), ("KAFKA_SSL_CERTFILE", self.ssl_certfile),
                               ("KAFKA_SSL_KEYFILE", self.ssl_keyfile)):
            if path and not os.path.isfile(path):
                raise SettingsError(f"{variable}={path!r} is not a readable file; give the path of a PEM file")
        if self.ssl_keyfile and not self.ssl_certfile:
            raise SettingsError("KAFKA_SSL_KEYFILE is set without KAFKA_SSL_CERTFILE; set both for a client "
                                "certificate, or neither")

    def replace(self, **changes: Any) -> "Settings":
        return dataclasses.replace(self, **changes)


def env_variable(field: str) -> str:
    """The environment variable behind a settings field (for error messages and docs)."""
    return _ENV[field][0]
