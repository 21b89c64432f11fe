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
import math
from collections import ChainMap
from typing import Any

from app.core.ingest.events import RUM_TYPES
from app.core.ingest.fields import expect
from app.core.ingest.reasons import WRONG_TYPE
from app.core.numbers import is_number

_NS_PER_MS = 1e6
_VITAL_KEYS = {"lcp": "LCP", "inp": "INP", "cls": "CLS", "fcp": "FCP", "ttfb": "TTFB"}
_MAX_ANY_DEPTH = 16  # nesting of OTLP arrayValue/kvlistValue decoded; deeper is None
_RETIRED_VITALS = {"fid"}  # FID was replaced by INP on 2024-03-12: dropped, not dead-lettered

# ---- Datadog RUM -------------------------------------------------------------------------
_DD_TYPES = {"view", "action", "error", "resource", "long_task", "vital"}
# Mobile SDKs report taps; they are the same signals as the browser's clicks.
_DD_FRUSTRATION = {"rage_click": "rage_click", "dead_click": "dead_click",
                   "error_click": "error_click", "rage_tap": "rage_click",
                   "error_tap": "error_click"}
# view.<field> (nanoseconds, except CLS which is unitless) -> our vital name
_DD_VITALS = {"largest_contentful_paint": "LCP", "interaction_to_next_paint": "INP",
              "cumulative_layout_shift": "CLS", "first_contentful_paint": "FCP",
              "first_byte": "TTFB"}


def to_native_rum(obj: dict) -> list[dict]:
    """Return our native RUM event objects for one decoded JSON object."""
    if not isinstance(obj, dict) or obj.get("type") in RUM_TYPES:
        return [obj]
    if _is_datadog(obj):
        return _from_datadog(obj, float(obj["date"]) / 1000.0)
    inner = _datadog_api_event(obj)
    if inner is not None:
        date = inner.get("date")
        ts = float(date) / 1000.0 if is_number(date) else obj["attributes"].get("timestamp")
        return _from_datadog(inner, ts)
    if isinstance(obj.get("resourceLogs"), list):
        return _from_otlp_logs(obj)
    if isinstance(obj.get("meta"), dict) and any(
            isinstance(obj.get(k), list) for k in ("events", "measurements")):
        return _from_faro(obj)
    return [obj]


def _obj(v: Any) -> dict:
    return v if isinstance(v, dict) else {}


def _list(v: Any) -> list:
    return v if isinstance(v, list) else []


def _records(container: dict, field: str) -> list[dict]:
    """The record objects of a vendor container field (absent or null: none). A field of the
    wrong type, or an item that is not an object, rejects the whole element as wrong_type:
    reading it as empty would drop the producer's records without a dead letter."""
    items = container.get(field)
    if items is None:
        return []
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise expect(WRONG_TYPE, field, "an array of objects", items)
    return items


def _str(v: Any) -> str | None:
    """`v` if it is a string, else None: set and dict lookups need a hashable key."""
    return v if isinstance(v, str) else None


def _str_list(v: Any) -> list[str] | None:
    """A list of service names from a JSON list or a comma-separated string."""
    if isinstance(v, str):
        v = v.split(",")
    if not isinstance(v, list):
        return None
    names = [s.strip() for s in v if isinstance(s, str) and s.strip()]
    return names or None


def _put(out: dict, key: str, value: Any) -> None:
    if value is not None and value != {}:
        out[key] = value


def _put_str(out: dict, key: str, value: Any) -> None:
    """Copy an optional string field only when it is one: an odd optional vendor field
    must not get the whole event dead-lettered."""
    if isinstance(value, str) and value:
        out[key] = value


def _is_datadog(obj: dict) -> bool:
    return (_str(obj.get("type")) in _DD_TYPES and isinstance(obj.get("session"), dict)
            and is_number(obj.get("date")))


def _datadog_api_event(obj: dict) -> dict | None:
    """The event inside one `data[]` item of Datadog's v2 RUM events API, else None."""
    if obj.get("type") != "rum":
        return None
    inner = _obj(obj.get("attributes")).get("attributes")
    if isinstance(inner, dict) and _str(inner.get("type")) in _DD_TYPES:
        return inner
    return None


def _dd_base(ev: dict, ts: Any) -> dict:
    view, ctx = _obj(ev.get("view")), _obj(ev.get("context"))
    base: dict[str, Any] = {"source": "datadog"}
    _put(base, "ts", ts)
    _put(base, "session_id", _obj(ev.get("session")).get("id"))
    _put_str(base, "view_id", view.get("id"))
    _put_str(base, "page", view.get("url"))
    _put_str(base, "user_id", _obj(ev.get("usr")).get("id"))
    _put_str(base, "cohort", ctx.get("cohort"))
    _put(base, "services", _str_list(ctx.get("services")))
    geo = _obj(ev.get("geo"))
    attrs = {"device": _obj(ev.get("device")).get("type"),
             "country": geo.get("country_iso_code") or geo.get("country")}
    _put(base, "attributes", {k: v for k, v in attrs.items() if isinstance(v, str)})
    return base


def _from_datadog(ev: dict, ts: Any) -> list[dict]:
    if ev.get("type") == "action":
        kinds = _obj(_obj(ev.get("action")).get("frustration")).get("type")
        if not isinstance(kinds, list):
            return []
        base = _dd_base(ev, ts)
        # Unknown kinds pass through as types, so the validator dead-letters them visibly.
        return [{**base, "type": _DD_FRUSTRATION.get(k, k) if isinstance(k, str) else k}
                for k in kinds]
    if ev.get("type") == "view":
        return _from_datadog_view(ev, ts)
    return []


def _from_datadog_view(ev: dict, ts: Any) -> list[dict]:
    view = _obj(ev.get("view"))
    if view.get("is_active") is True:
        return []  # an in-progress update: the final update carries the same view, final vitals
    if is_number(view.get("time_spent")) and is_number(ts):
        # `date` is the view start but the final update is sent at the view end: stamp the
        # view end, or every view longer than the grace period would arrive late.
        ts = ts + float(view["time_spent"]) / _NS_PER_MS / 1000.0
    base = _dd_base(ev, ts)
    out = [{**base, "type": "page_view"}]
    if is_number(view.get("loading_time")):
        out.append({**base, "type": "interactive",
                    "tti_ms": float(view["loading_time"]) / _NS_PER_MS})
    for field, name in _DD_VITALS.items():
        value = view.get(field)
        if is_number(value):
            value = float(value) if name == "CLS" else float(value) / _NS_PER_MS
            out.append({**base, "type": "web_vital", "name": name, "value": value})
    return out


# ---- OpenTelemetry (OTLP/JSON logs) -----------------------------------------------------
def _any_value(v: Any, depth: int = 0) -> Any:
    """Decode an OTLP/JSON AnyValue ({"stringValue": ...}, {"intValue": "12"}, ...).

    Nested arrays and kvlists deeper than `_MAX_ANY_DEPTH` decode as None: no web-vital
    field sits that deep, and the recursion stays far from Python's limit.
    """
    v = _obj(v)
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
        return [_any_value(x, depth + 1) for x in _list(_obj(v["arrayValue"]).get("values"))]
    if "kvlistValue" in v:
        return _kv(_obj(v["kvlistValue"]).get("values"), depth + 1)
    return None


def _kv(pairs: Any, depth: int = 0) -> dict:
    return {p["key"]: _any_value(p.get("value"), depth) for p in _list(pairs)
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


def _from_otlp_logs(req: dict) -> list[dict]:
    out: list[dict] = []
    for rl in _records(req, "resourceLogs"):
        res = _kv(_obj(rl.get("resource")).get("attributes"))
        for sl in _records(rl, "scopeLogs"):
            for rec in _records(sl, "logRecords"):
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
    _put(out, "ts", ts)  # absent rather than null: the validator then says "missing"
    _put(out, "session_id", merged.get("session.id"))
    _put(out, "name", _VITAL_KEYS.get(name.lower(), name) if isinstance(name, str) else name)
    _put(out, "value", attrs.get("browser.web_vital.value", body.get("value")))
    _put_str(out, "view_id", merged.get("browser.page.instance_id"))
    _put_str(out, "page", merged.get("url.full"))
    _put_str(out, "cohort", merged.get("lensbridge.cohort"))
    _put(out, "services", _str_list(merged.get("lensbridge.services")))
    mobile = merged.get("browser.mobile")
    device = ("mobile" if mobile else "desktop") if isinstance(mobile, bool) else None
    attributes = {"device": device, "country": merged.get("geo.country.iso_code")}
    _put(out, "attributes", {k: v for k, v in attributes.items() if isinstance(v, str)})
    return out


# ---- Grafana Faro ---------------------------------------------------------------------
def _faro_base(meta: dict) -> tuple[dict, list[str] | None]:
    """Fields shared by every item of one payload, and the session's services."""
    session, page = _obj(meta.get("session")), _obj(meta.get("page"))
    sattrs = {k: v for k, v in _obj(session.get("attributes")).items() if isinstance(v, str)}
    base: dict[str, Any] = {"source": "faro"}
    _put(base, "session_id", session.get("id"))
    _put_str(base, "view_id", page.get("id"))
    _put_str(base, "page", page.get("url"))
    _put_str(base, "user_id", _obj(meta.get("user")).get("id"))
    _put(base, "cohort", sattrs.pop("cohort", None))
    services = _str_list(sattrs.pop("services", None))
    mobile = _obj(meta.get("browser")).get("mobile")
    if isinstance(mobile, bool):
        sattrs.setdefault("device", "mobile" if mobile else "desktop")
    _put(base, "attributes", sattrs)
    return base, services


def _from_faro(payload: dict) -> list[dict]:
    base, services = _faro_base(payload["meta"])
    out: list[dict] = []
    for item in _records(payload, "events"):
        name, attrs = item.get("name"), _obj(item.get("attributes"))
        if not isinstance(name, str):
            continue
        ev = dict(base)
        _put(ev, "ts", item.get("timestamp"))
        if name.startswith("faro.frustration."):
            out.append({**ev, "type": name.removeprefix("faro.frustration.")})
        elif name == "faro.performance.navigation":
            # Services go on the page view only: frustration events carry no navigation id,
            # so the same page could otherwise count as two views of a service.
            _put(ev, "services", services)
            if "view_id" not in ev:
                _put_str(ev, "view_id", attrs.get("faroNavigationId"))
            out.append({**ev, "type": "page_view"})
    for item in _records(payload, "measurements"):
        if item.get("type") != "web-vitals":
            continue
        ev = {**base, "type": "web_vital"}
        _put(ev, "ts", item.get("timestamp"))
        nav_id = _obj(item.get("context")).get("navigation_entry_id")
        if isinstance(nav_id, str) and nav_id != "unknown":
            ev.setdefault("view_id", nav_id)  # the navigation event's faroNavigationId
        for key, value in _obj(item.get("values")).items():
            if key in _VITAL_KEYS:
                out.append({**ev, "name": _VITAL_KEYS[key], "value": value})
    return out
