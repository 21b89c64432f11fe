"""OpenTelemetry `browser.web_vital` events in OTLP/JSON logs -> native web-vital events;
every other log record maps to none. Decodes OTLP AnyValues and uint64 nanosecond times."""
from collections import ChainMap
from typing import Any

from app.core.ingest.otlp_values import any_value, kv_dict, otlp_seconds
from app.core.ingest.vendor_fields import VITAL_KEYS, as_obj, put, put_str, record_list, str_list

_RETIRED_VITALS = {"fid"}  # FID was replaced by INP on 2024-03-12: dropped, not dead-lettered


def from_otlp_logs(req: dict) -> list[dict]:
    out: list[dict] = []
    for rl in record_list(req, "resourceLogs"):
        res = kv_dict(as_obj(rl.get("resource")).get("attributes"))
        for sl in record_list(rl, "scopeLogs"):
            for rec in record_list(sl, "logRecords"):
                native = _otel_web_vital(rec, res)
                if native is not None:
                    out.append(native)
    return out


def _otel_web_vital(rec: dict, res: dict) -> dict | None:
    attrs = kv_dict(rec.get("attributes"))
    if (rec.get("eventName") or attrs.get("event.name")) != "browser.web_vital":
        return None
    body = any_value(rec.get("body"))
    body = body if isinstance(body, dict) else {}
    name = attrs.get("browser.web_vital.name", body.get("name"))
    if isinstance(name, str) and name.lower() in _RETIRED_VITALS:
        return None
    # A record attribute overrides its resource's. Looked up, not merged: a merge per record
    # would cost records x resource attributes (seconds for one crafted 1 MB payload).
    merged = ChainMap(attrs, res)
    ts = otlp_seconds(rec.get("timeUnixNano") or rec.get("observedTimeUnixNano"))
    out: dict[str, Any] = {"type": "web_vital", "source": "otel"}
    put(out, "ts", ts)  # absent rather than null: the validator then says "missing"
    put(out, "session_id", merged.get("session.id"))
    put(out, "name", VITAL_KEYS.get(name.lower(), name) if isinstance(name, str) else name)
    put(out, "value", attrs.get("browser.web_vital.value", body.get("value")))
    put_str(out, "view_id", merged.get("browser.page.instance_id"))
    put_str(out, "page", merged.get("url.full"))
    put_str(out, "cohort", merged.get("lensbridge.cohort"))
    put(out, "services", str_list(merged.get("lensbridge.services")))
    mobile = merged.get("browser.mobile")
    device = ("mobile" if mobile else "desktop") if isinstance(mobile, bool) else None
    attributes = {"device": device, "country": merged.get("geo.country.iso_code")}
    put(out, "attributes", {k: v for k, v in attributes.items() if isinstance(v, str)})
    return out
