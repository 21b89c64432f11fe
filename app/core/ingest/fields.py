"""Field checks of the decoder: each returns the value or raises Invalid naming the field,
the value (rendered short, `show_value`) and what was expected.

Numbers are checked with chained comparisons before any conversion: `0 <= v <= cap` is
False for NaN and infinity, and an integer too large for a float fails it instead of
raising OverflowError in `float(v)`.
"""
from app.core.ingest.reasons import BAD_TIMESTAMP, FUTURE_TIMESTAMP, MISSING_FIELD, OUT_OF_RANGE, WRONG_TYPE
from app.core.ingest.timeparse import TimestampTypeError, format_rfc3339, parse_ts, show_value

MAX_ERROR_CHARS = 400  # every error text is at most this long
SUBJECT_CAP = "LENSBRIDGE_MAX_SUBJECT_CHARS"
LATENCY_CAP = "LENSBRIDGE_MAX_LATENCY_MS"
# Their defaults (Settings, DecodeLimits and the record-size bounds in sizes.py share them).
DEFAULT_MAX_SUBJECT_CHARS = 256
DEFAULT_MAX_LATENCY_MS = 3_600_000.0  # one hour


class Invalid(Exception):
    """An element failed a check; becomes a Rejected."""

    def __init__(self, reason: str, error: str) -> None:
        error = error if len(error) <= MAX_ERROR_CHARS else error[: MAX_ERROR_CHARS - 3] + "..."
        super().__init__(reason, error)
        self.reason, self.error = reason, error


def expect(reason: str, field: str, expected: str, value: object) -> Invalid:
    return Invalid(reason, f"field {field!r} must be {expected}, got {show_value(value)}")


def require(obj: dict, fields: tuple[str, ...], when: str = "") -> None:
    for field in fields:
        if field not in obj:
            raise Invalid(MISSING_FIELD, f"field {field!r} is required {when}".rstrip())


def timestamp(obj: dict, now_s: float, max_ts_s: float) -> float:
    try:
        ts_s = parse_ts(obj["ts"])
    except TimestampTypeError as exc:
        raise Invalid(WRONG_TYPE, str(exc)) from None
    except ValueError as exc:
        raise Invalid(BAD_TIMESTAMP, str(exc)) from None
    if ts_s > max_ts_s:
        raise Invalid(FUTURE_TIMESTAMP, f"field 'ts' is {when(ts_s)}, more than "
                                        f"{max_ts_s - now_s:g} s after now ({when(now_s)})")
    return ts_s


def when(ts_s: float) -> str:
    try:
        return format_rfc3339(ts_s)
    except (OverflowError, ValueError, OSError):  # beyond the year 9999
        return f"{ts_s:g} s"


def non_empty_str(obj: dict, field: str) -> str:
    value = obj[field]
    if type(value) is not str or not value:
        reason = WRONG_TYPE if type(value) is not str else OUT_OF_RANGE
        raise expect(reason, field, "a non-empty string", value)
    return value


def subject(obj: dict, field: str, max_chars: int) -> str:
    """A non-empty string of at most `max_chars` characters (a name used as a key)."""
    value = non_empty_str(obj, field)
    if len(value) > max_chars:
        raise too_long(f"field {field!r}", value, max_chars)
    return value


def too_long(what: str, value: str, max_chars: int) -> Invalid:
    return Invalid(OUT_OF_RANGE, f"{what} is {len(value)} characters, more than {max_chars} "
                                 f"({SUBJECT_CAP}), got {show_value(value)}")


def number(obj: dict, field: str, cap: float, cap_name: str, when_: str = "") -> float:
    """A number 0 <= v <= cap (finite), as float; `cap_name` says where the cap comes from."""
    require(obj, (field,), when_)
    value = obj[field]
    if type(value) is not float and type(value) is not int:  # bool is neither
        raise expect(WRONG_TYPE, field, "a number >= 0", value)
    if value < 0:
        raise expect(OUT_OF_RANGE, field, "a number >= 0", value)
    if not value <= cap:  # also NaN and infinity
        raise expect(OUT_OF_RANGE, field, f"a finite number at most {cap:.12g} ({cap_name})", value)
    return float(value)


def check_optional_str(obj: dict, fields: tuple[str, ...]) -> None:
    for field in fields:
        value = obj.get(field)
        if value is not None and type(value) is not str:
            raise expect(WRONG_TYPE, field, "a string or null", value)
