"""Decoding one Kafka message: framing, every reason code, timestamps, cohorts, future skew."""
import calendar
import importlib.util
import json
import re

import orjson
import pytest

from app.core.ingest import decode
from app.core.ingest.decode import DecodeLimits, Rejected, decode_requests, decode_rum
from app.core.ingest.events import RequestEvent, RumEvent
from app.core.ingest.framing import array_spans
from tests.paths import DATA, ROOT

NOW_S = float(calendar.timegm((2026, 1, 1, 0, 0, 0)))
LIMITS = DecodeLimits(max_message_bytes=4096, max_future_skew_s=300.0)
DATA = DATA
EXAMPLES = ROOT / "schemas" / "examples"
GOOD = {"ts": NOW_S - 60, "service": "checkout", "latency_ms": 12.5, "status": 200}
VIEW = {"ts": NOW_S - 60, "session_id": "s1", "type": "page_view"}


def req(**changes):
    obj = dict(GOOD, **changes)
    return {k: v for k, v in obj.items() if v is not ...}  # `...` removes a field


def requests(raw, now_s=NOW_S, limits=LIMITS):
    return decode_requests(raw, now_s, limits)


def one_reject(raw):
    events, rejected = requests(raw)
    assert events == [] and len(rejected) == 1, rejected
    return rejected[0]


# --- framing --------------------------------------------------------------------------------


def test_single_object():
    events, rejected = requests(orjson.dumps(GOOD))
    assert events == [RequestEvent(NOW_S - 60, "checkout", 12.5, 200)] and rejected == []


def test_array_with_one_bad_element_rejects_that_element_only():
    raw = orjson.dumps([req(service="a"), req(status=700), req(service="c")])
    events, rejected = requests(raw)
    assert [e.service for e in events] == ["a", "c"]
    assert rejected == [Rejected("out_of_range", "field 'status' must be an integer 100-599, got 700",
                                 orjson.dumps(req(status=700)), 1, decode.ARRAY)]  # that element's own bytes


def test_ndjson_with_a_bad_line_keeps_that_lines_exact_bytes():
    bad_line = b'{"ts": 1, "service": "x"  '
    raw = orjson.dumps(req(service="a")) + b"\n\n" + bad_line + b"\r\n" + orjson.dumps(req(service="c")) + b"\n"
    events, rejected = requests(raw)
    assert [e.service for e in events] == ["a", "c"]
    (bad,) = rejected
    assert (bad.reason, bad.raw, bad.index, bad.framing) == ("not_json", bad_line + b"\r", 2, decode.NDJSON)


def test_ndjson_line_that_is_not_an_object():
    raw = orjson.dumps(GOOD) + b"\n[1, 2]\n"
    events, rejected = requests(raw)
    assert len(events) == 1
    assert [(r.reason, r.raw, r.index) for r in rejected] == [("not_object", b"[1, 2]", 1)]


def test_pretty_printed_object_is_one_message():
    events, rejected = requests(json.dumps(GOOD, indent=2).encode())
    assert len(events) == 1 and rejected == []


# --- every reason code ----------------------------------------------------------------------


@pytest.mark.parametrize("raw, reason, says", [
    (b"", "empty", "empty"),
    (b" \n\t ", "empty", "empty"),
    (None, "empty", "empty"),  # a tombstone
    (b"[]", "empty", "empty JSON array"),
    (b"x" * 4097, "oversize", "4097 bytes, limit is 4096"),
    (b'\xff{"ts": 1}', "not_utf8", "UTF-8 at byte 0"),
    (b'{"ts": 1, "service": "\xc3"}', "not_utf8", "UTF-8 at byte 22"),
    (b'{"ts": 1,', "not_json", "not valid JSON"),
    (b"NaN", "not_json", "not valid JSON"),
    (b'"checkout"', "not_object", 'got "checkout"'),
    (b"17", "not_object", "got 17"),
    (orjson.dumps(req(status=...)), "missing_field", "field 'status' is required"),
    (orjson.dumps(req(ts=...)), "missing_field", "field 'ts' is required"),
    (orjson.dumps(req(service=7)), "wrong_type", "field 'service' must be a non-empty string, got 7"),
    (orjson.dumps(req(service="")), "out_of_range", "field 'service' must be a non-empty string"),
    (orjson.dumps(req(latency_ms="12")), "wrong_type", "field 'latency_ms' must be a number >= 0, got \"12\""),
    (orjson.dumps(req(latency_ms=-0.5)), "out_of_range", "field 'latency_ms' must be a number >= 0, got -0.5"),
    (orjson.dumps(req(status=True)), "wrong_type", "field 'status' must be an integer 100-599, got true"),
    (orjson.dumps(req(status=200.5)), "wrong_type", "got 200.5"),
    (orjson.dumps(req(status=700)), "out_of_range", "field 'status' must be an integer 100-599, got 700"),
    (orjson.dumps(req(route=5)), "wrong_type", "field 'route' must be a string or null, got 5"),
    (orjson.dumps(req(ts=[1])), "wrong_type", "field 'ts' must be a number"),
    (orjson.dumps(req(ts="2026-01-01T00:00:00")), "bad_timestamp", "no UTC offset"),
    (orjson.dumps(req(ts=-1)), "bad_timestamp", ">= 0, got -1"),
    (orjson.dumps(req(ts=4102444800)), "future_timestamp", "2100-01-01T00:00:00.000Z, more than 300 s after now"),
])
def test_reason_codes(raw, reason, says):
    bad = one_reject(raw)
    assert bad.reason == reason and says in bad.error
    assert bad.raw == (raw or b"") and bad.index is None and bad.framing == decode.SINGLE


def test_unknown_rum_type():
    events, rejected = decode_rum(orjson.dumps(dict(VIEW, type="scroll_depth")), NOW_S, LIMITS)
    assert events == [] and [r.reason for r in rejected] == ["unknown_type"]
    assert "page_view" in rejected[0].error and '"scroll_depth"' in rejected[0].error


def test_long_bad_values_are_truncated_in_errors():
    bad = one_reject(orjson.dumps(req(latency_ms="y" * 3000)))
    assert bad.reason == "wrong_type" and '"yyy' in bad.error and len(bad.error) < 200


def test_first_missing_field_is_named_before_type_errors():
    bad = one_reject(orjson.dumps(req(service=..., latency_ms="12")))
    assert (bad.reason, bad.error) == ("missing_field", "field 'service' is required")


def test_every_reason_is_lower_snake_and_unique():
    assert len(set(decode.REASONS)) == len(decode.REASONS)
    assert all(re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)*", r) for r in decode.REASONS)


# --- fields ---------------------------------------------------------------------------------


def test_unknown_fields_are_ignored():
    events, rejected = requests(orjson.dumps(req(host="web-7", tags={"a": [1, None]}, status_text=None)))
    assert len(events) == 1 and rejected == []


def test_numbers_are_normalised():
    (event,), _ = requests(b'{"ts": 1767225000, "service": "s", "latency_ms": 7, "status": 404.0}')
    assert type(event.ts_s) is float and type(event.latency_ms) is float
    assert type(event.status) is int and event.status == 404


@pytest.mark.parametrize("ts", [NOW_S - 60, (NOW_S - 60) * 1000, "2025-12-31T23:59:00Z",
                                "2026-01-01T00:59:00+01:00", "2025-12-31T23:59:00.000z"])
def test_the_three_timestamp_forms_give_the_same_event(ts):
    (event,), rejected = requests(orjson.dumps(req(ts=ts)))
    assert event.ts_s == NOW_S - 60 and rejected == []


def test_historical_times_are_accepted():
    (event,), _ = requests(orjson.dumps(req(ts="2001-09-09T01:46:40Z")))
    assert event.ts_s == 1_000_000_000.0


def test_future_skew_bound_is_inclusive():
    at_bound = orjson.dumps(req(ts=NOW_S + 300))
    assert len(requests(at_bound)[0]) == 1
    at_bound_checked = orjson.dumps(req(ts=NOW_S + 300, status=200.0))  # 200.0 skips the fast path
    assert len(requests(at_bound_checked)[0]) == 1
    beyond = orjson.dumps(req(ts=(NOW_S + 300) * 1000 + 1))  # 1 ms beyond, as epoch ms
    assert one_reject(beyond).reason == "future_timestamp"
    assert len(requests(beyond, limits=LIMITS._replace(max_future_skew_s=301))[0]) == 1


def test_fast_and_checked_paths_build_the_same_event():
    variants = [req(), req(latency_ms=0), req(ts=(NOW_S - 1) * 1000), req(ts="2025-12-31T23:00:00Z"),
                req(route="/r", method=None), req(status=200.0)]
    variants += [json.loads(p.read_bytes()) for p in sorted((EXAMPLES / "request" / "valid").glob("*.json"))]
    for obj in variants:
        caps = (float("inf"), LIMITS.max_subject_chars, LIMITS.max_latency_ms)
        fast = decode._request_event(obj, NOW_S, *caps)
        checked = decode._checked_request(obj, NOW_S, *caps)
        assert fast == checked and tuple(map(type, fast)) == tuple(map(type, checked)), obj


# --- RUM ------------------------------------------------------------------------------------


def rum(obj, keys=("device", "country")):
    events, rejected = decode_rum(orjson.dumps(obj), NOW_S, LIMITS, keys)
    assert rejected == [], rejected
    (event,) = events
    return event


@pytest.mark.parametrize("obj, keys, cohort", [
    (dict(VIEW, cohort="beta"), ("device",), "beta"),
    (dict(VIEW, cohort="beta", attributes={"device": "mobile"}), ("device",), "beta"),
    (dict(VIEW, attributes={"country": "FR", "device": "mobile"}), ("device", "country"), "device=mobile,country=FR"),
    (dict(VIEW, attributes={"country": "FR", "plan": "free"}), ("device", "country"), "country=FR"),
    (dict(VIEW, attributes={"device": 3, "country": "", "os": "ios"}), ("device", "country"), "all"),
    (dict(VIEW, attributes={"device": "mobile"}), (), "all"),
    (dict(VIEW, cohort=None, attributes=None), ("device",), "all"),
    (VIEW, ("device",), "all"),
])
def test_cohort_derivation(obj, keys, cohort):
    assert rum(obj, keys).cohort == cohort


def test_rum_event_fields():
    obj = dict(VIEW, type="web_vital", name="LCP", value=1840, view_id="v9", tti_ms=5,
               services=["checkout", "cart", "checkout"], cohort="c")
    assert rum(obj) == RumEvent(NOW_S - 60, "s1", "web_vital", "c", "v9", None, "LCP", 1840.0,
                                ("checkout", "cart"))
    assert rum(dict(VIEW, type="interactive", tti_ms=2300, name="junk")).tti_ms == 2300.0
    assert rum(dict(VIEW, type="rage_click", tti_ms=-1, value="x")).tti_ms is None


def test_every_rum_element_goes_through_the_vendor_mapping(monkeypatch):
    seen = []

    def fake_mapping(obj):
        seen.append(obj["id"])
        return [dict(VIEW, session_id=obj["id"]), dict(VIEW, type="teleport")]

    monkeypatch.setattr(decode, "to_native_rum", fake_mapping)
    raw = orjson.dumps([{"id": "a"}, {"id": "b"}])
    events, rejected = decode_rum(raw, NOW_S, LIMITS)
    assert seen == ["a", "b"] and [e.session_id for e in events] == ["a", "b"]
    assert [(r.reason, r.index, r.raw) for r in rejected] == [("unknown_type", 0, b'{"id":"a"}'),
                                                              ("unknown_type", 1, b'{"id":"b"}')]


# --- the end-to-end data file ---------------------------------------------------------------


def test_bad_lines_file_decodes_as_its_expectation_says():
    lines = (DATA / "bad_lines.ndjson").read_bytes().split(b"\n")
    assert lines[-1] == b""  # the file ends with a newline
    expected = json.loads((DATA / "bad_lines.expected.json").read_text())
    assert [row["line"] for row in expected] == list(range(1, len(lines)))
    kinds = set()
    now_s = float(calendar.timegm((2026, 1, 1, 0, 0, 0)))  # any clock from 2025 until 2100 works
    for row, raw in zip(expected, lines[:-1], strict=True):
        events, rejected = decode_requests(raw, now_s, LIMITS)
        assert sorted(r.reason for r in rejected) == sorted(row["reasons"]), row
        assert len(events) == row["good_events"], row
        # One message per line: raw is the line, or for an array element that element's bytes.
        spans = array_spans(raw) or []
        assert all(r.raw == (raw[slice(*spans[r.index])] if r.framing == decode.ARRAY else raw) for r in rejected)
        kinds.update(row["reasons"])
    assert len(kinds) >= 8


def test_bad_lines_files_are_what_the_script_writes(tmp_path):
    spec = importlib.util.spec_from_file_location("make_bad_lines", DATA / "make_bad_lines.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.write(tmp_path)
    for name in ("bad_lines.ndjson", "bad_lines.expected.json"):
        assert (tmp_path / name).read_bytes() == (DATA / name).read_bytes(), name
