"""Datadog RUM events (browser SDK event format, also inside the v2 events API envelope)
-> native RUM events: views become page views, load times and vitals, actions with
frustration become frustration events; every other event type maps to none."""
from typing import Any

from app.core.ingest.vendor_fields import as_obj, as_str, put, put_str, str_list
from app.core.numbers import is_number

_NS_PER_MS = 1e6
_DD_TYPES = {"view", "action", "error", "resource", "long_task", "vital"}
# Mobile SDKs report taps; they are the same signals as the browser's clicks.
_DD_FRUSTRATION = {"rage_click": "rage_click", "dead_click": "dead_click",
                   "error_click": "error_click", "rage_tap": "rage_click",
                   "error_tap": "error_click"}
# view.<field> (nanoseconds, except CLS which is unitless) -> our vital name
_DD_VITALS = {"largest_contentful_paint": "LCP", "interaction_to_next_paint": "INP",
              "cumulative_layout_shift": "CLS", "first_contentful_paint": "FCP",
              "first_byte": "TTFB"}


def is_datadog(obj: dict) -> bool:
    return (as_str(obj.get("type")) in _DD_TYPES and isinstance(obj.get("session"), dict)
            and is_number(obj.get("date")))


def datadog_api_event(obj: dict) -> dict | None:
    """The event inside one `data[]` item of Datadog's v2 RUM events API, else None."""
    if obj.get("type") != "rum":
        return None
    inner = as_obj(obj.get("attributes")).get("attributes")
    if isinstance(inner, dict) and as_str(inner.get("type")) in _DD_TYPES:
        return inner
    return None


def _dd_base(ev: dict, ts: Any) -> dict:
    view, ctx = as_obj(ev.get("view")), as_obj(ev.get("context"))
    base: dict[str, Any] = {"source": "datadog"}
    put(base, "ts", ts)
    put(base, "session_id", as_obj(ev.get("session")).get("id"))
    put_str(base, "view_id", view.get("id"))
    put_str(base, "page", view.get("url"))
    put_str(base, "user_id", as_obj(ev.get("usr")).get("id"))
    put_str(base, "cohort", ctx.get("cohort"))
    put(base, "services", str_list(ctx.get("services")))
    geo = as_obj(ev.get("geo"))
    attrs = {"device": as_obj(ev.get("device")).get("type"),
             "country": geo.get("country_iso_code") or geo.get("country")}
    put(base, "attributes", {k: v for k, v in attrs.items() if isinstance(v, str)})
    return base


def from_datadog(ev: dict, ts: Any) -> list[dict]:
    if ev.get("type") == "action":
        kinds = as_obj(as_obj(ev.get("action")).get("frustration")).get("type")
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
    view = as_obj(ev.get("view"))
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
