"""Bytes of one Kafka message -> valid events + rejected elements.

A message carries one JSON object, a JSON array of objects, or NDJSON (one
object per line; blank lines skipped). One bad element rejects that element
only. The contracts are `schemas/request.schema.json` and
`schemas/rum-event.schema.json` (schemas/README.md); tests run every schema
example through here and require the same verdict. Hot path (docs/BENCH.md):
one `orjson.loads` per message, plain type checks, no jsonschema at runtime.
Unknown fields are ignored. Time is a parameter: historical times are
accepted, times beyond `now_s + max_future_skew_s` are not.

Total: for any bytes the decoders return (events, rejected) and never raise. Causes are
handled where they arise (type checks before lookups and loops, range checks before
float conversion, bounded rendering of bad values); should a bug still raise, a
per-element guard rejects that element alone as `processing_error` (exception type and
location in the error text), so one producer can never stop the stream.
"""
from typing import NamedTuple

import orjson

from app.core.ingest.events import RequestEvent, RumEvent
from app.core.ingest.fields import (
    DEFAULT_MAX_LATENCY_MS,
    DEFAULT_MAX_SUBJECT_CHARS,
    LATENCY_CAP,
    MAX_ERROR_CHARS,
    Invalid,
    check_optional_str,
    expect,
    number,
    require,
    subject,
    timestamp,
)
from app.core.ingest.framing import sized
from app.core.ingest.reasons import (
    BAD_TIMESTAMP,
    EMPTY,
    FUTURE_TIMESTAMP,
    LATE,
    MISSING_FIELD,
    NOT_JSON,
    NOT_OBJECT,
    NOT_UTF8,
    OUT_OF_RANGE,
    OVERSIZE,
    PROCESSING_ERROR,
    REASONS,
    RECORD_TOO_LARGE,
    UNKNOWN_TYPE,
    WRONG_TYPE,
)
from app.core.ingest.render import raised_at
from app.core.ingest.rum_event import MAX_CLS, rum_event
from app.core.ingest.timeparse import parse_ts, show_value
from app.core.ingest.vendors import to_native_rum

__all__ = ["ARRAY", "BAD_TIMESTAMP", "EMPTY", "FUTURE_TIMESTAMP", "LATE", "MAX_CLS", "MAX_ERROR_CHARS",
           "MISSING_FIELD", "NDJSON", "NOT_JSON", "NOT_OBJECT", "NOT_UTF8", "OUT_OF_RANGE", "OVERSIZE",
           "PROCESSING_ERROR", "REASONS", "RECORD_TOO_LARGE", "SINGLE", "UNKNOWN_TYPE", "WRONG_TYPE", "DecodeLimits",
           "Rejected", "decode_requests", "decode_rum"]

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
    index: int | None = None  # type: ignore[assignment]  # shadows tuple.index(), unused on a Rejected
    framing: str = SINGLE
    summary: dict | None = None

    def counts(self) -> dict[str, int]:
        """Rejected elements by reason that this dead letter stands for (for the counters)."""
        return dict(self.summary["reasons"]) if self.summary else {self.reason: 1}


class DecodeLimits(NamedTuple):
    max_message_bytes: int = 1_048_576
    max_future_skew_s: float = 300.0
    max_subject_chars: int = DEFAULT_MAX_SUBJECT_CHARS  # service, cohort, session and view ids
    max_latency_ms: float = DEFAULT_MAX_LATENCY_MS  # latency_ms, tti_ms, ms web vitals


_REQUEST_OPTIONAL = ("route", "method", "trace_id", "session_id", "region")
_new_tuple = tuple.__new__  # skips a NamedTuple's Python-level __new__: ~0.1 µs per event


def decode_requests(
    raw: bytes | None, now_s: float, limits: DecodeLimits
) -> tuple[list[RequestEvent], list[Rejected]]:
    """Decode one message of the requests topic. Total: never raises, for any bytes."""
    max_ts_s = now_s + limits.max_future_skew_s
    max_chars, max_ms = limits.max_subject_chars, limits.max_latency_ms
    framed = _frame(raw, limits)
    if type(framed) is dict:  # one object: skip the element bookkeeping
        try:
            return [_request_event(framed, now_s, max_ts_s, max_chars, max_ms)], []
        except Invalid as exc:  # `raw or b""`: a dict was parsed from raw, so raw is bytes
            return [], [Rejected(exc.reason, exc.error, raw or b"")]
        except Exception as exc:  # noqa: BLE001 - a decoder bug costs this element, not the stream
            return [], [Rejected(PROCESSING_ERROR, _bug(exc), raw or b"")]
    elements, rejected = framed
    events = []
    for obj, index, framing, elem_raw in elements:
        try:
            events.append(_request_event(obj, now_s, max_ts_s, max_chars, max_ms))
        except Invalid as exc:
            rejected.append(Rejected(exc.reason, exc.error, elem_raw, index, framing))
        except Exception as exc:  # noqa: BLE001
            rejected.append(Rejected(PROCESSING_ERROR, _bug(exc), elem_raw, index, framing))
    return events, sized(raw, rejected)


def decode_rum(
    raw: bytes | None, now_s: float, limits: DecodeLimits, cohort_keys: tuple[str, ...] = ()
) -> tuple[list[RumEvent], list[Rejected]]:
    """Decode one message of the RUM topic; each object goes through the vendor mapping first.
    Total: never raises, for any bytes."""
    max_ts_s = now_s + limits.max_future_skew_s
    max_chars, max_ms = limits.max_subject_chars, limits.max_latency_ms
    framed = _frame(raw, limits)
    elements, rejected = ([(framed, None, SINGLE, raw)], []) if type(framed) is dict else framed
    events = []
    for obj, index, framing, elem_raw in elements:
        try:
            natives = to_native_rum(obj)
        except Invalid as exc:  # a vendor container of the wrong type
            rejected.append(Rejected(exc.reason, exc.error, elem_raw, index, framing))
            continue
        except Exception as exc:  # noqa: BLE001 - a mapping bug costs this element, not the stream
            rejected.append(Rejected(PROCESSING_ERROR, _bug(exc), elem_raw, index, framing))
            continue
        for native in natives:
            try:
                events.append(rum_event(native, now_s, max_ts_s, cohort_keys, max_chars, max_ms))
            except Invalid as exc:
                rejected.append(Rejected(exc.reason, exc.error, elem_raw, index, framing))
            except Exception as exc:  # noqa: BLE001
                rejected.append(Rejected(PROCESSING_ERROR, _bug(exc), elem_raw, index, framing))
    return events, sized(raw, rejected)


def _bug(exc: Exception) -> str:
    """The error text of an unexpected exception: its type, where it was raised, its message."""
    try:
        message = show_value(str(exc))
    except Exception:  # noqa: BLE001 - str() of an exception is arbitrary code
        message = "(no message)"
    text = f"unexpected {type(exc).__name__} at {raised_at(exc)} while decoding: {message}"
    return text[:MAX_ERROR_CHARS]


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


def _request_event(obj: dict, now_s: float, max_ts_s: float, max_chars: int, max_ms: float) -> RequestEvent:
    """Fast accept of the common shape; anything else goes to `_checked_request`.

    Accepting only, never explaining, keeps every error text in one place; a test
    checks both paths build the same event for every valid example. The caps cost
    two comparisons; `0 <= latency_ms <= max_ms` is False for NaN, inf and huge ints.
    """
    try:
        ts_s = parse_ts(obj["ts"])
        service, latency_ms, status = obj["service"], obj["latency_ms"], obj["status"]
    except (KeyError, ValueError):
        return _checked_request(obj, now_s, max_ts_s, max_chars, max_ms)
    if (ts_s <= max_ts_s and type(service) is str and 0 < len(service) <= max_chars
            and (type(latency_ms) is float or type(latency_ms) is int) and 0 <= latency_ms <= max_ms
            and type(status) is int and 100 <= status <= 599):
        if len(obj) > 4:  # only then can optional fields be present
            check_optional_str(obj, _REQUEST_OPTIONAL)  # the checked path would raise the same
        return _new_tuple(RequestEvent, (ts_s, service, float(latency_ms), status))
    return _checked_request(obj, now_s, max_ts_s, max_chars, max_ms)


def _checked_request(obj: dict, now_s: float, max_ts_s: float, max_chars: int, max_ms: float) -> RequestEvent:
    """The reference check of request.schema.json: an event, or Invalid naming the first fault."""
    require(obj, ("ts", "service", "latency_ms", "status"))
    ts_s = timestamp(obj, now_s, max_ts_s)
    service = subject(obj, "service", max_chars)
    latency_ms = number(obj, "latency_ms", max_ms, LATENCY_CAP)
    status = obj["status"]
    if type(status) is not int:
        # JSON Schema counts 200.0 as an integer; so do we. bool is not one.
        if type(status) is not float or not status.is_integer():
            raise expect(WRONG_TYPE, "status", "an integer 100-599", status)
        status = int(status)
    if not 100 <= status <= 599:
        raise expect(OUT_OF_RANGE, "status", "an integer 100-599", status)
    check_optional_str(obj, _REQUEST_OPTIONAL)
    return RequestEvent(ts_s, service, latency_ms, status)
