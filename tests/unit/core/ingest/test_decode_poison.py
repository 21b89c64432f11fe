"""The poison classes of issue 13, one by one: each used to raise in the decoder (and so
stop the consumer group); each now gives events and dead letters with a reason. Also the
caps: subject names (LENSBRIDGE_MAX_SUBJECT_CHARS) and latencies (LENSBRIDGE_MAX_LATENCY_MS)."""
import json

import orjson
import pytest

from app.config import decode_limits
from app.core.ingest.decode import MAX_ERROR_CHARS, DecodeLimits, decode_requests, decode_rum
from app.settings import Settings, SettingsError
from tests.paths import ROOT

NOW_S = 1_800_000_000.0
LIMITS = DecodeLimits()
VENDORS = ROOT / "schemas" / "examples" / "vendors"
REQ = {"ts": 1_767_225_600, "service": "checkout", "latency_ms": 12.5, "status": 200}
RUM = {"ts": 1_767_225_600, "session_id": "s-1", "type": "page_view"}
DEEP = b"[" * 1000 + b"]" * 1000


def rum(raw, keys=()):
    return decode_rum(raw if type(raw) is bytes else orjson.dumps(raw), NOW_S, LIMITS, keys)


def requests(raw):
    return decode_requests(raw if type(raw) is bytes else orjson.dumps(raw), NOW_S, LIMITS)


def reasons(result):
    events, rejected = result
    assert all(0 < len(r.error) <= MAX_ERROR_CHARS for r in rejected)
    return len(events), sorted(r.reason for r in rejected)


def vendor(name, edit):
    obj = json.loads((VENDORS / name).read_text())
    edit(obj)
    return obj


def _set_records(obj, key, value):
    obj["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0][key] = value


def _vital_value(obj, value):
    attrs = obj["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]["attributes"]
    next(a for a in attrs if a["key"] == "browser.web_vital.value")["value"] = value


@pytest.mark.parametrize("raw, expected", [
    (b'{"type":[]}', (0, ["missing_field"])),  # 11 bytes: an unhashable type in a set lookup
    ({"type": {"a": 1}, "session": {}, "date": 1}, (0, ["missing_field"])),
    ({"type": "rum", "attributes": {"attributes": {"type": [1]}}}, (0, ["missing_field"])),
    (dict(RUM, type=[]), (0, ["wrong_type"])),
    # A number where records belong: the element is dead-lettered, never read as "no records".
    ({"resourceLogs": [{"scopeLogs": 5}]}, (0, ["wrong_type"])),
    ({"resourceLogs": [{"scopeLogs": [{"logRecords": True}]}]}, (0, ["wrong_type"])),
    ({"resourceLogs": [{"scopeLogs": [{"logRecords": [7]}]}]}, (0, ["wrong_type"])),
    ({"meta": {}, "events": [], "measurements": 5}, (0, ["wrong_type"])),
    ({"meta": {}, "events": True, "measurements": []}, (0, ["wrong_type"])),
    (vendor("datadog/action-frustration.json", lambda o: o["action"]["frustration"].update(type=[[1], {}])),
     (0, ["wrong_type", "wrong_type"])),
    (vendor("otel/web-vitals-logs.json", lambda o: _set_records(o, "timeUnixNano", "9" * 400)),
     (2, ["bad_timestamp"])),
    (vendor("otel/web-vitals-logs.json", lambda o: _vital_value(o, {"intValue": "9" * 400})),
     (2, ["out_of_range"])),
    (vendor("otel/web-vitals-logs.json", lambda o: _vital_value(o, {"intValue": "9" * 5000})),
     (2, ["wrong_type"])),  # beyond Python's 4,300-digit int() limit: stays a string
    (vendor("datadog/view-final.json", lambda o: o.update(date=1.7e308) or o["view"].update(time_spent=1.7e308)),
     (0, ["bad_timestamp"] * 7)),  # the view end overflows to infinity
    (vendor("datadog/view-final.json", lambda o: o["view"].update(loading_time=1.7e308)),
     (6, ["out_of_range"])),
    (b'{"ts": 1767225600, "session_id": "s", "type": "page_view", "view_id": ' + DEEP + b"}", (0, ["wrong_type"])),
])
def test_rum_poison_classes(raw, expected):
    assert reasons(rum(raw)) == expected


def test_deep_otlp_any_values_decode_without_recursion():
    nested = '{"kvlistValue":{"values":[{"key":"k","value":' * 250 + '{"intValue":"1"}' + "}]}}" * 250
    obj = vendor("otel/web-vitals-logs.json", lambda o: None)
    text = orjson.dumps(obj).decode().replace('{"stringValue":"de-DE"}', nested, 1)
    assert nested in text and reasons(rum(text.encode())) == (3, [])


@pytest.mark.parametrize("raw, reason, says", [
    (b'{"ts": ' + DEEP + b', "service": "s", "latency_ms": 1, "status": 200}', "wrong_type", "got [[[[[[[["),
    (dict(REQ, latency_ms=1.7e308), "out_of_range", "at most 3600000 (LENSBRIDGE_MAX_LATENCY_MS), got 1.7e308"),
    (b'{"ts": 1767225600, "service": "s", "latency_ms": 1' + b"0" * 30 + b', "status": 200}', "out_of_range",
     "LENSBRIDGE_MAX_LATENCY_MS"),
    (dict(REQ, service="x" * 600_000), "out_of_range",
     "field 'service' is 600000 characters, more than 256 (LENSBRIDGE_MAX_SUBJECT_CHARS)"),
    (dict(REQ, latency_ms="y" * 600_000), "wrong_type", '"yyyy'),
    (dict(REQ, status=2**64 - 1), "out_of_range", "18446744073709551615"),
    (dict(REQ, route=[DEEP.decode()]), "wrong_type", "field 'route'"),
])
def test_request_poison_classes(raw, reason, says):
    events, rejected = requests(raw)
    assert events == [] and [r.reason for r in rejected] == [reason]
    assert says in rejected[0].error and len(rejected[0].error) <= MAX_ERROR_CHARS


def test_caps_are_inclusive_on_both_paths():
    at_caps = dict(REQ, service="s" * 256, latency_ms=3_600_000)
    for obj in (at_caps, dict(at_caps, status=200.0)):  # 200.0 takes the checked path
        assert reasons(requests(obj)) == (1, [])
    for obj in (dict(REQ, service="s" * 257), dict(REQ, latency_ms=3_600_000.001)):
        assert reasons(requests(obj)) == (0, ["out_of_range"])
        assert reasons(requests(dict(obj, status=200.0))) == (0, ["out_of_range"])


@pytest.mark.parametrize("obj, says", [
    (dict(RUM, session_id="s" * 257), "field 'session_id' is 257 characters"),
    (dict(RUM, view_id="v" * 257), "field 'view_id' is 257 characters"),
    (dict(RUM, cohort="c" * 257), "field 'cohort' is 257 characters"),
    (dict(RUM, services=["cart", "x" * 300]), "an entry of field 'services' is 300 characters"),
    (dict(RUM, attributes={"device": "d" * 250}), "the cohort built from LENSBRIDGE_COHORT_KEYS is 257"),
    (dict(RUM, type="interactive", tti_ms=1e300), "field 'tti_ms' must be a finite number at most 3600000"),
    (dict(RUM, type="web_vital", name="LCP", value=3_600_001), "field 'value' must be a finite number"),
    (dict(RUM, type="web_vital", name="CLS", value=1000.5), "at most 1000 (the cap of CLS)"),
])
def test_rum_caps(obj, says):
    events, rejected = rum(obj, keys=("device",))
    assert events == [] and [r.reason for r in rejected] == ["out_of_range"]
    assert says in rejected[0].error, rejected[0].error


def test_caps_come_from_the_settings():
    settings = Settings.from_env({"LENSBRIDGE_MAX_SUBJECT_CHARS": "8", "LENSBRIDGE_MAX_LATENCY_MS": "1000"})
    limits = decode_limits(settings)
    assert (limits.max_subject_chars, limits.max_latency_ms) == (8, 1000.0)
    assert reasons(decode_requests(orjson.dumps(dict(REQ, service="s" * 9)), NOW_S, limits)) == (0, ["out_of_range"])
    assert reasons(decode_requests(orjson.dumps(dict(REQ, latency_ms=1001)), NOW_S, limits)) == (0, ["out_of_range"])
    assert reasons(decode_requests(orjson.dumps(dict(REQ, service="s" * 8)), NOW_S, limits)) == (1, [])


@pytest.mark.parametrize("env, says", [
    ({"LENSBRIDGE_MAX_SUBJECT_CHARS": "0"}, "LENSBRIDGE_MAX_SUBJECT_CHARS='0' must be at least 1"),
    ({"LENSBRIDGE_MAX_SUBJECT_CHARS": "5000"}, "LENSBRIDGE_MAX_SUBJECT_CHARS='5000' must be at most 4096"),
    ({"LENSBRIDGE_MAX_LATENCY_MS": "nan"}, "LENSBRIDGE_MAX_LATENCY_MS='nan' is not a number"),
    ({"LENSBRIDGE_MAX_LATENCY_MS": "inf"}, "LENSBRIDGE_MAX_LATENCY_MS='inf' must be between"),
    ({"LENSBRIDGE_MAX_LATENCY_MS": "0"}, "LENSBRIDGE_MAX_LATENCY_MS='0' must be between"),
])
def test_bad_cap_settings_name_the_variable(env, says):
    with pytest.raises(SettingsError, match=says.replace("(", r"\(")):
        Settings.from_env(env)


def test_a_decoder_bug_rejects_only_its_element(monkeypatch):
    from app.core.ingest import decode

    def mapping(obj):
        if obj.get("boom"):
            raise KeyError("boom")
        return [obj]

    monkeypatch.setattr(decode, "to_native_rum", mapping)
    raw = orjson.dumps([RUM, dict(RUM, boom=1), RUM])
    events, rejected = rum(raw)
    assert len(events) == 2 and [(r.reason, r.index) for r in rejected] == [("processing_error", 1)]
    assert rejected[0].error.startswith("unexpected KeyError at test_decode_poison.py:")
    assert "boom" in rejected[0].error
