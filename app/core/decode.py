"""Bytes of one Kafka message -> valid events + rejected elements.

A message carries one JSON object, a JSON array of objects, or NDJSON (one
object per line; blank lines skipped). One bad element rejects that element
only. The contracts are `schemas/request.schema.json` and
`schemas/rum-event.schema.json` (schemas/README.md); tests run every schema
example through here and require the same verdict. Hot path (BRIEF section 5):
one `orjson.loads` per message, plain type checks, no jsonschema at runtime.
Unknown fields are ignored. Time is a parameter: historical times are
accepted, times beyond `now_s + max_future_skew_s` are not.
"""
from typing import Any, NamedTuple

import orjson

from app.core.events import RUM_TYPES, WEB_VITALS, RequestEvent, RumEvent
from app.core.framing import sized
from app.core.timeparse import TimestampTypeError, format_rfc3339, parse_ts, show_value
from app.core.vendors import to_native_rum

# Reason codes: stable lower_snake, Prometheus label values and the `reason` of
# dead letters (schemas/dead-letter.schema.json lists them; a test keeps both in step).
OVERSIZE, EMPTY, NOT_UTF8, NOT_JSON, NOT_OBJECT = "oversize", "empty", "not_utf8", "not_json", "not_object"
MISSING_FIELD, WRONG_TYPE, OUT_OF_RANGE = "missing_field", "wrong_type", "out_of_range"
BAD_TIMESTAMP, FUTURE_TIMESTAMP, UNKNOWN_TYPE = "bad_timestamp", "future_timestamp", "unknown_type"
LATE = "late"  # the window engine's, not the decoder's
PROCESSING_ERROR = "processing_error"  # an agent's per-record catch-all, not the decoder's
RECORD_TOO_LARGE = "record_too_large"  # the outbox's: a record the worker wrote was refused for its size
REASONS = (OVERSIZE, EMPTY, NOT_UTF8, NOT_JSON, NOT_OBJECT, MISSING_FIELD, WRONG_TYPE,
           OUT_OF_RANGE, BAD_TIMESTAMP, FUTURE_TIMESTAMP, UNKNOWN_TYPE, LATE, PROCESSING_ERROR,
           RECORD_TOO_LARGE)

# Where a rejected element sat in its message (`framing` of a dead letter).
SINGLE, ARRAY, NDJSON = "single", "array", "ndjson"


class Rejected(NamedTuple):
    """One rejected element, or the summary of many (`summary`).

    `raw` is lossless and sized by its cause: the whole message when the message as
    a whole is rejected, the exact bytes of the offending NDJSON line (without its
    newline) or array element (as the producer wrote it, found by `array_spans`).
    `index` says which element (or which 0-based line), and is None when the message
    as a whole is rejected. A message with more than `MAX_DEAD_LETTERS` rejected
    elements gets that many of their own, and one more for the rest: `summary` is
    then {"count", "reasons" (reason -> count), "indexes" ([first, last] ranges),
    "indexes_truncated"}, `index` is None and `raw` is the whole message.
    """

    reason: str
    error: str
    raw: bytes
    index: int | None = None
    framing: str = SINGLE
    summary: dict | None = None

    def counts(self) -> dict[str, int]:
        """Rejected elements by reason that this dead letter stands for (for the counters)."""
        return dict(self.summary["reasons"]) if self.summary else {self.reason: 1}


class DecodeLimits(NamedTuple):
    max_message_bytes: int = 1_048_576
    max_future_skew_s: float = 300.0


class Invalid(Exception):
    """An element failed a check; becomes a Rejected."""

    def __init__(self, reason: str, error: str) -> None:
        super().__init__(reason, error)
        self.reason, self.error = reason, error


_REQUEST_OPTIONAL = ("route", "method", "trace_id", "session_id", "region")
_RUM_OPTIONAL = ("view_id", "page", "user_id")
_RUM_TYPE_SET = frozenset(RUM_TYPES)
_new_tuple = tuple.__new__  # skips a NamedTuple's Python-level __new__: ~0.1 µs per event


def decode_requests(
    raw: bytes | None, now_s: float, limits: DecodeLimits
) -> tuple[list[RequestEvent], list[Rejected]]:
    """Decode one message of the requests topic."""
    max_ts_s = now_s + limits.max_future_skew_s
    framed = _frame(raw, limits)
    if type(framed) is dict:  # one object: skip the element bookkeeping
        try:
            return [_request_event(framed, now_s, max_ts_s)], []
        except Invalid as exc:
            return [], [Rejected(exc.reason, exc.error, raw)]
    elements, rejected = framed
    events = []
    for obj, index, framing, elem_raw in elements:
        try:
            events.append(_request_event(obj, now_s, max_ts_s))
        except Invalid as exc:
            rejected.append(Rejected(exc.reason, exc.error, elem_raw, index, framing))
    return events, sized(raw, rejected)


def decode_rum(
    raw: bytes | None, now_s: float, limits: DecodeLimits, cohort_keys: tuple[str, ...] = ()
) -> tuple[list[RumEvent], list[Rejected]]:
    """Decode one message of the RUM topic; each object goes through the vendor mapping first."""
    max_ts_s = now_s + limits.max_future_skew_s
    framed = _frame(raw, limits)
    elements, rejected = ([(framed, None, SINGLE, raw)], []) if type(framed) is dict else framed
    events = []
    for obj, index, framing, elem_raw in elements:
        for native in to_native_rum(obj):
            try:
                events.append(_rum_event(native, now_s, max_ts_s, cohort_keys))
            except Invalid as exc:
                rejected.append(Rejected(exc.reason, exc.error, elem_raw, index, framing))
    return events, sized(raw, rejected)


# --- framing ----------------------------------------------------------------------------------


def _frame(raw: bytes | None, limits: DecodeLimits) -> dict | tuple[list, list[Rejected]]:
    """The object of a one-object message (the common case), else (elements, rejected)
    with elements as (object, index, framing, raw bytes to keep if it is rejected)."""
    if raw is None:  # a tombstone (null value)
        raw = b""
    if len(raw) > limits.max_message_bytes:
        error = f"message is {len(raw)} bytes, limit is {limits.max_message_bytes}"
        return [], [Rejected(OVERSIZE, error, raw)]
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if not raw.strip():
            return [], [Rejected(EMPTY, "message is empty", raw)]
        if b"\n" in raw.strip():  # more than one line: NDJSON
            return _split_ndjson(raw)
        return [], [_unparsable(raw, exc, None, SINGLE)]
    if type(doc) is dict:
        return doc
    if type(doc) is not list:
        error = f"message must be a JSON object, an array of objects or NDJSON, got {show_value(doc)}"
        return [], [Rejected(NOT_OBJECT, error, raw)]
    if not doc:
        return [], [Rejected(EMPTY, "message is an empty JSON array", raw)]
    elements, rejected = [], []
    for i, item in enumerate(doc):
        if type(item) is dict:
            elements.append((item, i, ARRAY, raw))
        else:
            error = f"array element {i} must be a JSON object, got {show_value(item)}"
            rejected.append(Rejected(NOT_OBJECT, error, raw, i, ARRAY))
    return elements, rejected


def _split_ndjson(raw: bytes) -> tuple[list, list[Rejected]]:
    # A broken pretty-printed document lands here too and is rejected line by
    # line; each dead letter keeps its line's bytes, so nothing is lost.
    elements, rejected = [], []
    for i, line in enumerate(raw.split(b"\n")):
        if not line.strip():
            continue
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            rejected.append(_unparsable(line, exc, i, NDJSON))
            continue
        if type(doc) is dict:
            elements.append((doc, i, NDJSON, line))
        else:
            error = f"NDJSON line {i} must be a JSON object, got {show_value(doc)}"
            rejected.append(Rejected(NOT_OBJECT, error, line, i, NDJSON))
    return elements, rejected


def _unparsable(raw: bytes, exc: Exception, index: int | None, framing: str) -> Rejected:
    # orjson checks UTF-8 itself; the two causes are told apart only on this error path.
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as bad:
        error = f"not valid UTF-8 at byte {bad.start} ({raw[bad.start:bad.start + 4]!r})"
        return Rejected(NOT_UTF8, error, raw, index, framing)
    return Rejected(NOT_JSON, f"not valid JSON: {exc}", raw, index, framing)


# --- request records --------------------------------------------------------------------------


def _request_event(obj: dict, now_s: float, max_ts_s: float) -> RequestEvent:
    """Fast accept of the common shape; anything else goes to `_checked_request`.

    Accepting only, never explaining, keeps every error text in one place; a test
    checks both paths build the same event for every valid example.
    """
    try:
        ts_s = parse_ts(obj["ts"])
        service, latency_ms, status = obj["service"], obj["latency_ms"], obj["status"]
    except (KeyError, ValueError):
        return _checked_request(obj, now_s, max_ts_s)
    if (ts_s <= max_ts_s and type(service) is str and service
            and (type(latency_ms) is float or type(latency_ms) is int) and latency_ms >= 0
            and type(status) is int and 100 <= status <= 599):
        if len(obj) > 4:  # only then can optional fields be present
            _check_optional_str(obj, _REQUEST_OPTIONAL)  # the checked path would raise the same
        return _new_tuple(RequestEvent, (ts_s, service, float(latency_ms), status))
    return _checked_request(obj, now_s, max_ts_s)


def _checked_request(obj: dict, now_s: float, max_ts_s: float) -> RequestEvent:
    """The reference check of request.schema.json: an event, or Invalid naming the first fault."""
    _require(obj, ("ts", "service", "latency_ms", "status"))
    ts_s = _timestamp(obj, now_s, max_ts_s)
    service = _non_empty_str(obj, "service")
    latency_ms = _number_ge0(obj, "latency_ms")
    status = obj["status"]
    if type(status) is not int:
        # JSON Schema counts 200.0 as an integer; so do we. bool is not one.
        if type(status) is not float or not status.is_integer():
            raise _expect(WRONG_TYPE, "status", "an integer 100-599", status)
        status = int(status)
    if not 100 <= status <= 599:
        raise _expect(OUT_OF_RANGE, "status", "an integer 100-599", status)
    _check_optional_str(obj, _REQUEST_OPTIONAL)
    return RequestEvent(ts_s, service, latency_ms, status)


# --- RUM events -------------------------------------------------------------------------------


def _rum_event(obj: Any, now_s: float, max_ts_s: float, cohort_keys: tuple[str, ...]) -> RumEvent:
    if type(obj) is not dict:  # a vendor mapping returned something odd
        raise Invalid(NOT_OBJECT, f"RUM event must be a JSON object, got {show_value(obj)}")
    _require(obj, ("ts", "session_id", "type"))
    ts_s = _timestamp(obj, now_s, max_ts_s)
    session_id = _non_empty_str(obj, "session_id")
    kind = obj["type"]
    if type(kind) is not str:
        raise _expect(WRONG_TYPE, "type", "a string", kind)
    if kind not in _RUM_TYPE_SET:
        raise _expect(UNKNOWN_TYPE, "type", "one of " + ", ".join(RUM_TYPES), kind)
    # Type-specific fields are checked, and kept, only with their type.
    tti_ms = name = value = None
    if kind == "interactive":
        tti_ms = _number_ge0(obj, "tti_ms", "with type interactive")
    elif kind == "web_vital":
        _require(obj, ("name", "value"), "with type web_vital")
        name = obj["name"]
        if type(name) is not str:
            raise _expect(WRONG_TYPE, "name", "a string", name)
        if name not in WEB_VITALS:
            raise _expect(OUT_OF_RANGE, "name", "one of " + ", ".join(WEB_VITALS), name)
        value = _number_ge0(obj, "value")
    _check_optional_str(obj, _RUM_OPTIONAL)
    services = _services(obj)
    cohort = _cohort(obj, cohort_keys)
    view_id = obj.get("view_id")
    return _new_tuple(RumEvent, (ts_s, session_id, kind, cohort, view_id, tti_ms, name, value, services))


def _services(obj: dict) -> tuple[str, ...]:
    services = obj.get("services")
    if services is None:
        return ()
    if type(services) is not list:
        raise _expect(WRONG_TYPE, "services", "an array of non-empty strings", services)
    for item in services:
        if type(item) is not str or not item:
            reason = WRONG_TYPE if type(item) is not str else OUT_OF_RANGE
            raise _expect(reason, "services", "an array of non-empty strings", services)
    # A page view depends on a service once, however often the producer listed it.
    return tuple(dict.fromkeys(services))


def _cohort(obj: dict, cohort_keys: tuple[str, ...]) -> str:
    """The event's cohort, else `k=v,...` from the attributes named in `cohort_keys`, else `all`."""
    attributes = obj.get("attributes")
    if attributes is not None and type(attributes) is not dict:
        raise _expect(WRONG_TYPE, "attributes", "an object or null", attributes)
    cohort = obj.get("cohort")
    if cohort is not None:
        if type(cohort) is not str or not cohort:
            reason = WRONG_TYPE if type(cohort) is not str else OUT_OF_RANGE
            raise _expect(reason, "cohort", "a non-empty string or null", cohort)
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
            return ",".join(parts)
    return "all"


# --- field checks: each raises Invalid naming the field, the value and what was expected ------


def _expect(reason: str, field: str, expected: str, value: object) -> Invalid:
    return Invalid(reason, f"field {field!r} must be {expected}, got {show_value(value)}")


def _require(obj: dict, fields: tuple[str, ...], when: str = "") -> None:
    for field in fields:
        if field not in obj:
            raise Invalid(MISSING_FIELD, f"field {field!r} is required {when}".rstrip())


def _timestamp(obj: dict, now_s: float, max_ts_s: float) -> float:
    try:
        ts_s = parse_ts(obj["ts"])
    except TimestampTypeError as exc:
        raise Invalid(WRONG_TYPE, str(exc)) from None
    except ValueError as exc:
        raise Invalid(BAD_TIMESTAMP, str(exc)) from None
    if ts_s > max_ts_s:
        raise Invalid(FUTURE_TIMESTAMP, f"field 'ts' is {_when(ts_s)}, more than "
                                        f"{max_ts_s - now_s:g} s after now ({_when(now_s)})")
    return ts_s


def _when(ts_s: float) -> str:
    try:
        return format_rfc3339(ts_s)
    except (OverflowError, ValueError, OSError):  # beyond the year 9999
        return f"{ts_s:g} s"


def _non_empty_str(obj: dict, field: str) -> str:
    value = obj[field]
    if type(value) is not str or not value:
        reason = WRONG_TYPE if type(value) is not str else OUT_OF_RANGE
        raise _expect(reason, field, "a non-empty string", value)
    return value


def _number_ge0(obj: dict, field: str, when: str = "") -> float:
    _require(obj, (field,), when)
    value = obj[field]
    if type(value) is not float and type(value) is not int:  # bool is neither
        raise _expect(WRONG_TYPE, field, "a number >= 0", value)
    if value < 0:
        raise _expect(OUT_OF_RANGE, field, "a number >= 0", value)
    return float(value)


def _check_optional_str(obj: dict, fields: tuple[str, ...]) -> None:
    for field in fields:
        value = obj.get(field)
        if value is not None and type(value) is not str:
            raise _expect(WRONG_TYPE, field, "a string or null", value)
