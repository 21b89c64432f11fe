"""Event-time parsing: epoch seconds, epoch milliseconds, RFC 3339; and the errors."""
import calendar
import math

import pytest

from app.core.ingest.timeparse import MS_THRESHOLD, TimestampTypeError, format_rfc3339, parse_ts, show_value

NEW_YEAR_2026_S = calendar.timegm((2026, 1, 1, 0, 0, 0))  # computed independently of the code


@pytest.mark.parametrize("value, expected_s", [
    (NEW_YEAR_2026_S, NEW_YEAR_2026_S),
    (NEW_YEAR_2026_S + 0.25, NEW_YEAR_2026_S + 0.25),
    (0, 0.0),
    (MS_THRESHOLD, MS_THRESHOLD),  # the threshold itself still reads as seconds
    (NEW_YEAR_2026_S * 1000 + 250, NEW_YEAR_2026_S + 0.25),
    (float(NEW_YEAR_2026_S * 1000), float(NEW_YEAR_2026_S)),
    (MS_THRESHOLD + 1000, MS_THRESHOLD / 1000 + 1),
])
def test_numbers_are_epoch_seconds_or_milliseconds(value, expected_s):
    result = parse_ts(value)
    assert type(result) is float
    assert result == pytest.approx(expected_s, abs=1e-6)


@pytest.mark.parametrize("text, expected_s", [
    ("2026-01-01T00:00:00Z", NEW_YEAR_2026_S),
    ("2026-01-01T00:00:00.250Z", NEW_YEAR_2026_S + 0.25),
    ("2026-01-01T00:00:00.123456789Z", NEW_YEAR_2026_S + 0.123456),  # beyond µs is truncated
    ("2026-01-01T02:00:00+02:00", NEW_YEAR_2026_S),
    ("2025-12-31T19:30:00-04:30", NEW_YEAR_2026_S),
    ("2026-01-01T00:00:00-00:00", NEW_YEAR_2026_S),  # RFC 3339: UTC, local offset unknown
    ("2026-01-01t00:00:00z", NEW_YEAR_2026_S),  # RFC 3339 allows lower case
    ("2016-12-31T23:59:60Z", calendar.timegm((2017, 1, 1, 0, 0, 0))),  # leap second
    ("1970-01-01T00:00:00Z", 0.0),
])
def test_rfc3339_strings(text, expected_s):
    assert parse_ts(text) == pytest.approx(expected_s, abs=1e-6)


@pytest.mark.parametrize("text, says", [
    ("2026-01-01T00:00:00", "no UTC offset"),
    ("2026-01-01 00:00:00", "no UTC offset"),
    ("2026-01-01T00:00", "no UTC offset"),
    ("2026-01-01 00:00:00Z", "RFC 3339"),  # space separator: not the contract's form
    ("2026-01-01", "RFC 3339"),
    ("1767225600", "RFC 3339"),
    ("", "RFC 3339"),
    ("2026-01-01T00:00:00+05:75", "RFC 3339"),
    ("2026-01-01T00:00:00+24:00", "RFC 3339"),
    ("\u0662\u0660\u0662\u0666-01-01T00:00:00Z", "RFC 3339"),  # Arabic-Indic digits
    ("2026-01-01T00:00:00Z\n", "RFC 3339"),
    ("2025-02-29T00:00:00Z", "impossible"),
    ("2026-13-01T00:00:00Z", "impossible"),
    ("2026-01-01T24:00:00Z", "impossible"),
    ("2026-01-01T23:60:00Z", "impossible"),
    ("1969-12-31T23:59:59Z", "before 1970"),
    ("1970-01-01T00:30:00+01:00", "before 1970"),
])
def test_bad_strings_say_why(text, says):
    with pytest.raises(ValueError, match=says) as caught:
        parse_ts(text)
    assert "'ts'" in str(caught.value)


@pytest.mark.parametrize("value", [-1, -0.001, math.nan, math.inf, -math.inf, 1e301])
def test_bad_numbers(value):
    with pytest.raises(ValueError, match="epoch seconds or milliseconds >= 0"):
        parse_ts(value)


@pytest.mark.parametrize("value", [True, False, None, [1767225600], {"s": 1}, b"1767225600"])
def test_other_types_raise_a_type_error_that_is_a_value_error(value):
    with pytest.raises(TimestampTypeError) as caught:
        parse_ts(value, field="event_time")
    assert isinstance(caught.value, ValueError)
    assert "'event_time'" in str(caught.value)


def test_error_shows_the_value_truncated():
    with pytest.raises(ValueError) as caught:
        parse_ts("x" * 10_000)
    message = str(caught.value)
    assert '"xxxx' in message and "..." in message and len(message) < 200


def test_show_value_renders_json():
    assert show_value(True) == "true"
    assert show_value("200") == '"200"'
    assert show_value(None) == "null"


@pytest.mark.parametrize("ts_s, text", [
    (NEW_YEAR_2026_S, "2026-01-01T00:00:00.000Z"),
    (NEW_YEAR_2026_S + 0.25, "2026-01-01T00:00:00.250Z"),
    (0, "1970-01-01T00:00:00.000Z"),
])
def test_format_rfc3339_round_trips(ts_s, text):
    assert format_rfc3339(ts_s) == text
    assert parse_ts(text) == pytest.approx(ts_s, abs=1e-3)
