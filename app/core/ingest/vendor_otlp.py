"""OpenTelemetry `browser.web_vital` events in OTLP/JSON logs -> native web-vital events;
every other log record maps to none. Decodes OTLP AnyValues and uint64 nanosecond times."""
import math
from collections import ChainMap
from typing import Any

from app.core.ingest.vendor_fields import VITAL_KEYS, as_list, as_obj, put, put_str, record_list, str_list

_MAX_ANY_DEPTH = 16  # nesting of OTLP arrayValue/kvlistValue decoded; deeper is None
_RETIRED_VITALS = {"fid"}  # FID was replaced by INP on 2024-03-12: dropped, not dead-lettered


def _any_value(v: Any, depth: int = 0) -> Any:
    """Decode an OTLP/JSON AnyValue ({"stringValue": ...}, {"intValue": "12"}, ...).

    Nested arrays and kvlists deeper than `_MAX_ANY_DEPTH` decode as None: no web-vital
    field sits that deep, and the recursion stays far from Python's limit.
    """
    v = as_obj(v)
    for key in ("stringValue", "boolValue", "doubleValue"):
        if key in v:
            return v[key]
    if "intValue" in v:
        try:
            return int(v["intValue"])  # int64 travels as a JSON string
        except (TypeError, ValueError, OverflowError):  # OverflowError: int(1e999)
            return v["intValue"]
    if depth >= _MAX_ANY_DEPTH:
        return None
    if "arrayValue" in v:
        return [_any_value(x, depth + 1) for x in as_list(as_obj(v["arrayValue"]).get("values"))]
    if "kvlistValue" in v:
        return _kv(as_obj(v["kvlistValue"]).get("values"), depth + 1)
    return None


def _kv(pairs: Any, depth: int = 0) -> dict:
    return {p["key"]: _any_value(p.get("value"), depth) for p in as_list(pairs)
            if isinstance(p, dict) and isinstance(p.get("key"), str)}


def _otlp_seconds(nanos: Any) -> float | None:
    """An OTLP time (uint64 ns, a JSON string or number) -> epoch seconds; None if not one."""
    if isinstance(nanos, bool):
        return None
    try:
        seconds, nanos = divmod(int(nanos), 1_000_000_000)  # int64 ns: float would lose ~1e-7 s
        return seconds + nanos / 1e9
    except OverflowError:  # beyond any float (a 400-digit string): the validator rejects inf
        return math.inf
    except (TypeError, ValueError):
        return None


def from_otlp_logs(req: dict) -> list[dict]:
    out: list[dict] = []
    for rl in record_list(req, "resourceLogs"):
        res = _kv(as_obj(rl.get("resource")).get("attributes"))
        for sl in record_list(rl, "scopeLogs"):
            for rec in record_list(sl, "logRecords"):
                native = _otel_web_vital(rec, res)
                if native is not None:
                    out.append(native)
    return out


def _otel_web_vital(rec: dict, res: dict) -> dict | None:
    attrs = _kv(rec.get("attributes"))
    if (rec.get("eventName") or attrs.get("event.name")) != "browser.web_vital":
        return None
    body = _any_value(rec.get("body"))
    body = body if isinstance(body, dict) else {}
    name = attrs.get("browser.web_vital.name", body.get("name"))
    if isinstance(name, str) and name.lower() in _RETIRED_VITALS:
        return None
    # A record attribute overrides its resource's. Looked up, not merged: a merge per record
    # would cost records x resource attributes (seconds for one crafted 1 MB payload).
    merged = ChainMap(attrs, res)
    ts = _otlp_seconds(rec.get("timeUnixNano") or rec.get("observedTimeUnixNano"))
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
