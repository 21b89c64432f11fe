"""Vendor RUM exports -> our native RUM event objects (docs/VENDORS.md has the full tables).

`to_native_rum(obj)` runs on every decoded JSON object of the RUM topic, before validation.
A native object, or anything that matches no vendor shape, passes through unchanged as
`[obj]`, so the validator reports its errors. A vendor object becomes zero or more native
objects, each marked `source` (the convention that applied). A vendor record that carries
nothing for the CX lens (a Datadog resource event, an OTLP log that is not a web vital)
maps to no event: that is a decision, not a loss; VENDORS.md lists what is dropped.
A mapped object missing what we need (no session id) is still emitted, so the validator
dead-letters it instead of us dropping it; a record container of the wrong type (OTLP
`scopeLogs: 5`, Faro `events: true`) raises `Invalid` (wrong_type), so the whole element
is dead-lettered rather than read as "no records".

Supported: Datadog RUM events (browser SDK event format, also inside the v2 events API
envelope), OpenTelemetry `browser.web_vital` events in OTLP/JSON logs, Grafana Faro
transport payloads (`faro.frustration.*` events, `web-vitals` measurements, navigations).
"""
from app.core.ingest.events import RUM_TYPES
from app.core.ingest.vendor_datadog import datadog_api_event, from_datadog, is_datadog
from app.core.ingest.vendor_faro import from_faro
from app.core.ingest.vendor_otlp import from_otlp_logs
from app.core.numbers import is_number


def to_native_rum(obj: dict) -> list[dict]:
    """Return our native RUM event objects for one decoded JSON object."""
    if not isinstance(obj, dict) or obj.get("type") in RUM_TYPES:
        return [obj]
    if is_datadog(obj):
        return from_datadog(obj, float(obj["date"]) / 1000.0)
    inner = datadog_api_event(obj)
    if inner is not None:
        date = inner.get("date")
        ts = float(date) / 1000.0 if is_number(date) else obj["attributes"].get("timestamp")
        return from_datadog(inner, ts)
    if isinstance(obj.get("resourceLogs"), list):
        return from_otlp_logs(obj)
    if isinstance(obj.get("meta"), dict) and any(
            isinstance(obj.get(k), list) for k in ("events", "measurements")):
        return from_faro(obj)
    return [obj]
