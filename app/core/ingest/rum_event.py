"""One decoded JSON object of the RUM topic (after the vendor mapping) -> a RumEvent.

The reference check of `schemas/rum-event.schema.json`: an event, or Invalid naming the
first fault. Names used as keys (session, view, cohort, services) are capped at
`max_chars` characters, millisecond values at `max_ms`, CLS at MAX_CLS.
"""
from typing import Any

from app.core.ingest.events import RUM_TYPES, WEB_VITALS, RumEvent
from app.core.ingest.fields import (
    LATENCY_CAP,
    Invalid,
    check_optional_str,
    expect,
    number,
    require,
    subject,
    timestamp,
    too_long,
)
from app.core.ingest.reasons import NOT_OBJECT, OUT_OF_RANGE, UNKNOWN_TYPE, WRONG_TYPE
from app.core.ingest.timeparse import show_value

# CLS is unitless: a layout shift scores at most 1 per frame, real pages stay below 10.
MAX_CLS = 1000.0
_RUM_OPTIONAL = ("view_id", "page", "user_id")
_RUM_TYPE_SET = frozenset(RUM_TYPES)
_new_tuple = tuple.__new__  # skips a NamedTuple's Python-level __new__: ~0.1 µs per event


def rum_event(obj: Any, now_s: float, max_ts_s: float, cohort_keys: tuple[str, ...],
              max_chars: int, max_ms: float) -> RumEvent:
    if type(obj) is not dict:  # a vendor mapping returned something odd
        raise Invalid(NOT_OBJECT, f"RUM event must be a JSON object, got {show_value(obj)}")
    require(obj, ("ts", "session_id", "type"))
    ts_s = timestamp(obj, now_s, max_ts_s)
    session_id = obj["session_id"]
    if type(session_id) is not str or not 0 < len(session_id) <= max_chars:
        session_id = subject(obj, "session_id", max_chars)  # raises, naming the fault
    kind = obj["type"]
    if type(kind) is not str:
        raise expect(WRONG_TYPE, "type", "a string", kind)
    if kind not in _RUM_TYPE_SET:
        raise expect(UNKNOWN_TYPE, "type", "one of " + ", ".join(RUM_TYPES), kind)
    # Type-specific fields are checked, and kept, only with their type.
    tti_ms = name = value = None
    if kind == "interactive":
        tti_ms = number(obj, "tti_ms", max_ms, LATENCY_CAP, "with type interactive")
    elif kind == "web_vital":
        require(obj, ("name", "value"), "with type web_vital")
        name = obj["name"]
        if type(name) is not str:
            raise expect(WRONG_TYPE, "name", "a string", name)
        if name not in WEB_VITALS:
            raise expect(OUT_OF_RANGE, "name", "one of " + ", ".join(WEB_VITALS), name)
        if name == "CLS":
            value = number(obj, "value", MAX_CLS, "the cap of CLS")
        else:
            value = number(obj, "value", max_ms, LATENCY_CAP)
    check_optional_str(obj, _RUM_OPTIONAL)
    view_id = obj.get("view_id")
    if view_id is not None and len(view_id) > max_chars:
        raise too_long("field 'view_id'", view_id, max_chars)
    services = _services(obj, max_chars)
    cohort = _cohort(obj, cohort_keys, max_chars)
    return _new_tuple(RumEvent, (ts_s, session_id, kind, cohort, view_id, tti_ms, name, value, services))


def _services(obj: dict, max_chars: int) -> tuple[str, ...]:
    services = obj.get("services")
    if services is None:
        return ()
    if type(services) is not list:
        raise expect(WRONG_TYPE, "services", "an array of non-empty strings", services)
    for item in services:
        if type(item) is not str or not item:
            reason = WRONG_TYPE if type(item) is not str else OUT_OF_RANGE
            raise expect(reason, "services", "an array of non-empty strings", services)
        if len(item) > max_chars:
            raise too_long("an entry of field 'services'", item, max_chars)
    # A page view depends on a service once, however often the producer listed it.
    return tuple(dict.fromkeys(services))


def _cohort(obj: dict, cohort_keys: tuple[str, ...], max_chars: int) -> str:
    """The event's cohort, else `k=v,...` from the attributes named in `cohort_keys`, else `all`."""
    attributes = obj.get("attributes")
    if attributes is not None and type(attributes) is not dict:
        raise expect(WRONG_TYPE, "attributes", "an object or null", attributes)
    cohort = obj.get("cohort")
    if cohort is not None:
        if type(cohort) is not str or not cohort:
            reason = WRONG_TYPE if type(cohort) is not str else OUT_OF_RANGE
            raise expect(reason, "cohort", "a non-empty string or null", cohort)
        if len(cohort) > max_chars:
            raise too_long("field 'cohort'", cohort, max_chars)
        return cohort
    if attributes and cohort_keys:
        parts = []
        for key in cohort_keys:
            value = attributes.get(key)
            # Only non-empty strings count: numbers or objects would need a
            # formatting convention that no producer has asked for.
            if type(value) is str and value:
                parts.append(key + "=" + value)
        if parts:
            cohort = ",".join(parts)
            if len(cohort) > max_chars:
                raise too_long("the cohort built from LENSBRIDGE_COHORT_KEYS", cohort, max_chars)
            return cohort
    return "all"
