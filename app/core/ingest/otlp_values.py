"""OTLP/JSON values shared by the OTLP readers (logs on the RUM topic, spans on the requests
topic): AnyValues, attribute lists and uint64 nanosecond times, decoded leniently (a value
of an odd shape reads as None, never raises)."""
import math
from typing import Any

from app.core.ingest.vendor_fields import as_list, as_obj

_MAX_ANY_DEPTH = 16  # nesting of OTLP arrayValue/kvlistValue decoded; deeper is None


def any_value(v: Any, depth: int = 0) -> Any:
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
        return [any_value(x, depth + 1) for x in as_list(as_obj(v["arrayValue"]).get("values"))]
    if "kvlistValue" in v:
        return kv_dict(as_obj(v["kvlistValue"]).get("values"), depth + 1)
    return None


def kv_dict(pairs: Any, depth: int = 0) -> dict:
    return {p["key"]: any_value(p.get("value"), depth) for p in as_list(pairs)
            if isinstance(p, dict) and isinstance(p.get("key"), str)}


def otlp_seconds(nanos: Any) -> float | None:
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
