"""Dead letters sized by their cause: element bytes, a bounded count per message, truncation."""
import hashlib
import json
import random

import orjson
import pytest
from jsonschema import Draft202012Validator

from app.core.ingest.deadletter import (
    DLQ_MAX_RECORD_BYTES,
    MAX_ERROR_CHARS,
    MAX_KEY_BYTES,
    dead_letter_record,
    key_bytes,
    max_raw_bytes,
    raw_bytes,
    record_limit_bytes,
)
from app.core.ingest.decode import ARRAY, NDJSON, NOT_OBJECT, DecodeLimits, Rejected, decode_requests, decode_rum
from app.core.ingest.framing import MAX_DEAD_LETTERS, MAX_INDEX_RANGES, array_spans
from tests.paths import ROOT

SCHEMA = json.loads((ROOT / "schemas" / "dead-letter.schema.json").read_text())
VALIDATOR = Draft202012Validator(SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER)
NOW_S = 1_767_225_600.0
LIMITS = DecodeLimits(1 << 20, 300.0)
GOOD = {"ts": NOW_S, "service": "checkout", "latency_ms": 12.5, "status": 200}


def letters(rejected, key=b"k", limit=DLQ_MAX_RECORD_BYTES) -> list[bytes]:
    out = [dead_letter_record(r, "requests", 0, 7, key, NOW_S, limit) for r in rejected]
    for value in out:
        VALIDATOR.validate(orjson.loads(value))
    return out


def test_many_bad_elements_give_bounded_dead_letters():
    raw = b"[" + b",".join([b"1"] * 5000) + b"]"  # 10 KB, 5,000 bad elements (was 68 MB of dead letters)
    events, rejected = decode_requests(raw, NOW_S, LIMITS)
    assert events == [] and len(rejected) == MAX_DEAD_LETTERS + 1
    out = letters(rejected)
    assert sum(map(len, out)) < 200_000
    summary = orjson.loads(out[-1])
    assert summary["summary"] == {"count": 4900, "reasons": {NOT_OBJECT: 4900}, "indexes": [[100, 4999]],
                                  "indexes_truncated": False}
    assert summary["index"] is None and summary["framing"] == ARRAY and raw_bytes(summary) == raw
    assert sum(sum(r.counts().values()) for r in rejected) == 5000, "the counters still see every element"
    assert [orjson.loads(v)["index"] for v in out[:-1]] == list(range(100))


def test_a_good_event_beside_many_bad_ones_is_kept_and_ranges_are_bounded():
    elements = []
    for i in range(1000):  # alternate bad/good: 500 single-element ranges
        elements.append(orjson.dumps(GOOD) if i % 2 else orjson.dumps(dict(GOOD, status=700 + i)))
    raw = b"[" + b",".join(elements) + b"]"
    events, rejected = decode_requests(raw, NOW_S, LIMITS)
    assert len(events) == 500 and len(rejected) == MAX_DEAD_LETTERS + 1
    summary = rejected[-1].summary
    assert summary["count"] == 400 and summary["indexes_truncated"]
    assert len(summary["indexes"]) == MAX_INDEX_RANGES and summary["indexes"][0] == [200, 200]


def test_ndjson_lines_are_bounded_too():
    raw = b"\n".join([b"[1]"] * 300)
    _, rejected = decode_requests(raw, NOW_S, LIMITS)
    assert len(rejected) == MAX_DEAD_LETTERS + 1
    assert all(r.raw == b"[1]" and r.framing == NDJSON for r in rejected[:-1])
    assert rejected[-1].summary["indexes"] == [[100, 299]] and rejected[-1].raw == raw
    letters(rejected)  # a summary of NDJSON lines is a valid record too


def test_one_object_with_many_bad_vendor_records_is_bounded():
    # A Faro payload without a session: each of its 3,000 web vitals is missing session_id.
    faro = {"meta": {"page": {"url": "https://x/" + "p" * 200}},
            "measurements": [{"type": "web-vitals", "timestamp": "2026-01-01T00:00:00Z", "values": {"lcp": 1}}] * 3000}
    raw = orjson.dumps(faro)
    _, rejected = decode_rum(raw, NOW_S, LIMITS)
    assert len(raw) > 200_000, "each rejection would carry the whole message"
    # The first keeps the message's bytes; the byte budget puts the other 2,999 in the summary.
    assert len(rejected) == 2 and rejected[-1].summary["count"] == 2999
    assert sum(map(len, letters(rejected))) < 3 * len(raw)


def _value(rng: random.Random, depth: int):
    kind = rng.randrange(8 if depth < 4 else 5)
    if kind == 0:
        return rng.choice([0, -1, 3.5e300, 17])
    if kind == 1:
        return rng.choice([True, False, None])
    if kind in (2, 3, 4):
        return _string(rng)
    if kind in (5, 6):
        return [_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {_string(rng): _value(rng, depth + 1) for _ in range(rng.randrange(4))}


def _string(rng: random.Random) -> str:
    alphabet = ['"', "\\", "[", "]", "{", "}", ",", " ", "a", "\u00e9", "\n", "\u2028", "\U0001f600"]
    return "".join(rng.choice(alphabet) for _ in range(rng.randrange(6)))


def _dump(rng: random.Random, value) -> bytes:
    """JSON text with random whitespace around the elements and a random escaping style."""
    ws = lambda: rng.choice(["", " ", "\n", "\t ", "\r\n  "])  # noqa: E731
    if isinstance(value, list):
        return ("[" + ws() + ("," + ws()).join(_dump(rng, v).decode() + ws() for v in value) + "]").encode()
    option = orjson.OPT_INDENT_2 if rng.random() < 0.3 else 0
    text = orjson.dumps(value, option=option)
    return json.dumps(value).encode() if rng.random() < 0.3 else text  # json escapes non-ASCII


@pytest.mark.parametrize("seed", range(300))
def test_array_spans_are_the_exact_element_bytes(seed):
    rng = random.Random(seed)
    elements = [_value(rng, 1) for _ in range(rng.randrange(1, 12))]
    texts = [_dump(rng, e) for e in elements]
    seps = [rng.choice([b",", b" ,", b",\n ", b"\t,\t"]) for _ in texts]
    raw = rng.choice([b"", b" ", b"\n"]) + b"[" + b"".join(
        rng.choice([b"", b" "]) + t + (seps[i] if i < len(texts) - 1 else b"") for i, t in enumerate(texts)) \
        + b"]" + rng.choice([b"", b" \n"])
    assert orjson.loads(raw) == orjson.loads(b"[" + b",".join(texts) + b"]")
    spans = array_spans(raw)
    assert [raw[a:b] for a, b in spans] == [t.strip(b" \t\r\n") for t in texts]
    _, rejected = decode_requests(raw, NOW_S, LIMITS)  # no element is a valid request
    for bad in rejected:
        assert bad.raw == texts[bad.index].strip(b" \t\r\n")


@pytest.mark.parametrize("raw", [b"", b"[", b"]", b"{}", b"[1,", b'["]', b"[1]]", b"x[1]", b"[1] x", b'"[1]"',
                                 b"[1,[2,3]", b"\xff[\xfe]", b"[}", b'[1,"a\\"]'])
def test_array_spans_is_total(raw):
    spans = array_spans(raw)
    assert spans is None or isinstance(spans, list)


def test_empty_array_has_no_spans():
    assert array_spans(b" [ ] ") == []


def test_raw_too_large_for_the_topic_is_truncated_with_length_and_hash():
    raw = bytes(range(256)) * 8000  # 2 MB
    limit = 300_000
    [value] = letters([Rejected("oversize", "too big", raw)], limit=limit)
    doc = orjson.loads(value)
    assert len(value) < limit
    assert doc["raw_truncated"] and doc["raw_length"] == len(raw)
    assert doc["raw_sha256"] == hashlib.sha256(raw).hexdigest()
    assert raw_bytes(doc) == raw[:max_raw_bytes(limit)]


def test_a_message_up_to_the_decode_limit_is_never_truncated_under_its_record_limit():
    raw = b"\xff" * LIMITS.max_message_bytes
    [value] = letters([Rejected("not_utf8", "e" * 5000, raw)], key=b"\x00" * 5000,
                      limit=record_limit_bytes(LIMITS.max_message_bytes))
    doc = orjson.loads(value)
    assert not doc["raw_truncated"] and raw_bytes(doc) == raw
    assert len(value) + MAX_KEY_BYTES < record_limit_bytes(LIMITS.max_message_bytes)
    assert len(doc["error"]) <= MAX_ERROR_CHARS + 20
    assert doc["key_truncated"] and key_bytes(doc) == b"\x00" * MAX_KEY_BYTES


def test_the_default_limit_fits_a_topic_created_without_size_configuration():
    worst = Rejected("not_utf8", "\x01" * 10_000, b"\xff" * (2 << 20))
    [value] = letters([worst], key=b"\x01" * 10_000)
    assert len(value) + MAX_KEY_BYTES < 1_048_588  # the broker's default max.message.bytes


def test_an_error_text_with_a_lone_surrogate_still_makes_a_record():
    [value] = letters([Rejected("processing_error", "bad \ud800 text", b"x")])
    assert orjson.loads(value)["error"] == "bad \\ud800 text"


def test_array_spans_can_stop_at_the_element_it_needs():
    raw = b'[1, {"a": [2, 3]}, "x,y", 4]'
    assert [raw[a:b] for a, b in array_spans(raw, until=1)] == [b"1", b'{"a": [2, 3]}']
    assert [raw[a:b] for a, b in array_spans(raw, until=3)] == [b"1", b'{"a": [2, 3]}', b'"x,y"', b"4"]


def test_one_rejection_larger_than_the_detail_budget_needs_no_summary() -> None:
    # Found by the property test: a whole message over the budget made an empty summary.
    from app.core.ingest.framing import MAX_DETAIL_RAW_BYTES, sized

    raw = b'"' + b"x" * (MAX_DETAIL_RAW_BYTES + 10) + b'"'
    [only] = sized(raw, [Rejected("not_object", "not an object", raw)])
    assert only.raw == raw and only.summary is None
