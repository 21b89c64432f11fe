"""Good traffic and poison messages for tests/integration/test_poison.py.

Every poison message says which dead-letter reasons are right for it. None accepts
`processing_error`: the decoder is total, so each class, including those it used to raise on
(wrong JSON types in vendor shapes, huge integers, deep nesting), gets its own reason. The
agents' safety net for a bug is covered by tests/unit/agents/test_lens_safety.py.
"""
from __future__ import annotations

from dataclasses import dataclass

import orjson

SERVICES = ("checkout", "search")
COHORTS = ("desktop", "mobile")
BIG_INT = "1" + "0" * 400  # an int64 field as OTLP/JSON writes it (a string), far beyond a float


@dataclass
class Poison:
    name: str
    lens: str  # "sre" (requests topic) or "cx" (RUM topic)
    value: bytes | None
    reasons: frozenset[str]  # every dead letter of this message has one of these
    letters: int = 1  # dead letters this message yields
    key: bytes = b""  # set by the test: shares a partition with good traffic
    good: int = 0  # good events inside it (counted in the windows)


def _deep(levels: int) -> bytes:
    return b"[" * levels + b"1" + b"]" * levels


def _otlp_vital(ts_ns: str, value: dict) -> bytes:
    attributes = [{"key": "session.id", "value": {"stringValue": "s-otlp"}},
                  {"key": "browser.web_vital.name", "value": {"stringValue": "LCP"}},
                  {"key": "browser.web_vital.value", "value": value}]
    record = {"eventName": "browser.web_vital", "timeUnixNano": ts_ns, "attributes": attributes}
    return orjson.dumps({"resourceLogs": [{"scopeLogs": [{"logRecords": [record]}]}]})


def request(ts_s: float, service: str, latency_ms: float = 12.5, status: int = 200) -> dict:
    return {"ts": ts_s, "service": service, "latency_ms": latency_ms, "status": status}


def page_view(ts_s: float, cohort: str, n: int) -> dict:
    return {"ts": ts_s, "session_id": f"s-{cohort}-{n}", "type": "page_view", "cohort": cohort,
            "view_id": f"v-{cohort}-{n}"}


def poisons(now_s: float, ts_s: float) -> list[Poison]:
    """Every poison class, on both topics; `ts_s` is a valid event time for mixed messages."""
    def one(name, lens, value, *reasons, **kw) -> Poison:
        return Poison(name, lens, value, frozenset(reasons), **kw)

    both = []
    for lens in ("sre", "cx"):
        both += [
            one(f"{lens}: 11-byte message", lens, b'{"type":[]}', "missing_field", "wrong_type"),
            one(f"{lens}: invalid UTF-8", lens, b'{"ts": 1, "x": "\xff\xfe"}', "not_utf8"),
            one(f"{lens}: NaN", lens, b'{"ts": NaN, "service": "a"}', "not_json"),
            one(f"{lens}: Infinity", lens, b'{"ts": 1, "latency_ms": 1e400}', "not_json"),
            one(f"{lens}: ts NaN string", lens, b'{"ts": "NaN", "service": "a", "session_id": "s", '
                                                b'"latency_ms": 1, "status": 200, "type": "page_view"}',
                "bad_timestamp"),
            one(f"{lens}: empty", lens, b"", "empty"),
            one(f"{lens}: whitespace", lens, b" \n\t ", "empty"),
            one(f"{lens}: tombstone", lens, None, "empty"),
            one(f"{lens}: empty array", lens, b"[]", "empty"),
            one(f"{lens}: a string", lens, b'"hello"', "not_object"),
            one(f"{lens}: null", lens, b"null", "not_object"),
            one(f"{lens}: 2,000-deep nesting", lens, b'{"ts": ' + _deep(2000) + b"}", "not_json"),
            one(f"{lens}: 10 KB of 5,000 bad elements", lens, b"[" + b",".join([b"1"] * 5000) + b"]",
                "not_object", letters=101),
            one(f"{lens}: truncated JSON", lens, b'{"ts": 1, "service": "a"', "not_json"),
            one(f"{lens}: ts a huge number", lens, b'{"ts": 1' + b"0" * 30 + b', "service": "a", "session_id": "s",'
                                                   b' "latency_ms": 1, "status": 200, "type": "page_view"}',
                "future_timestamp", "bad_timestamp"),
        ]
    t = orjson.dumps(ts_s)
    sre = [
        one("sre: service a list", "sre", orjson.dumps(request(ts_s, [])), "wrong_type"),
        one("sre: 1,000-deep service", "sre",
            b'{"ts": ' + t + b', "service": ' + _deep(1000) + b', "latency_ms": 1, "status": 200}',
            "wrong_type"),
        one("sre: status 10**30", "sre", orjson.dumps(request(ts_s, "a"))[:-4] + b"1" + b"0" * 30 + b"}",
            "out_of_range"),
        one("sre: ts an object", "sre", b'{"ts": {"$date": []}, "service": "a", "latency_ms": 1, "status": 200}',
            "wrong_type"),
        one("sre: array, good beside bad", "sre",
            b'[' + orjson.dumps(request(ts_s, "checkout")) + b', 7 ,{"ts": "yesterday", "service": "a", '
            b'"latency_ms": 1, "status": 200}]', "not_object", "bad_timestamp", letters=2, good=1),
        one("sre: NDJSON, a bad line", "sre",
            orjson.dumps(request(ts_s, "checkout")) + b"\n{\"ts\": oops}\n" + orjson.dumps(request(ts_s, "search")),
            "not_json", good=2),
    ]
    cx = [
        one("cx: type a list", "cx", orjson.dumps({"ts": ts_s, "session_id": "s", "type": []}),
            "wrong_type"),
        one("cx: type an object", "cx", orjson.dumps({"ts": ts_s, "session_id": "s", "type": {"a": 1}}),
            "wrong_type"),
        one("cx: OTLP scopeLogs 5", "cx", b'{"resourceLogs": [{"scopeLogs": 5}]}', "wrong_type"),
        one("cx: OTLP logRecords true", "cx", b'{"resourceLogs": [{"scopeLogs": [{"logRecords": true}]}]}',
            "wrong_type"),
        one("cx: OTLP timeUnixNano 10**400", "cx", _otlp_vital(BIG_INT, {"doubleValue": 1200.0}),
            "bad_timestamp", "out_of_range"),
        one("cx: OTLP intValue 10**400", "cx", _otlp_vital(str(int(now_s * 1e9)), {"intValue": BIG_INT}),
            "out_of_range"),
        one("cx: Faro events 5", "cx", orjson.dumps({"meta": {"session": {"id": "s"}}, "measurements": [],
                                                     "events": 5}), "wrong_type"),
        one("cx: Faro measurements true", "cx", orjson.dumps({"meta": {"session": {"id": "s"}}, "events": [],
                                                              "measurements": True}), "wrong_type"),
        one("cx: Datadog type a list", "cx", orjson.dumps({"type": [], "session": {"id": "s"},
                                                           "date": int(now_s * 1000)}),
            "missing_field", "wrong_type"),
        one("cx: 1,000-deep cohort", "cx",
            b'{"ts": ' + t + b', "session_id": "s", "type": "page_view", "cohort": ' + _deep(1000) + b"}",
            "wrong_type"),
        one("cx: array, good beside bad", "cx",
            b'[ ' + orjson.dumps(page_view(ts_s, "desktop", 9_000)) + b' , "x" ]', "not_object", good=1),
    ]
    return both + sre + cx
