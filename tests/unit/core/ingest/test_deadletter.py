"""The dead-letter record: matches its schema, keeps bytes lossless, inverts."""
import calendar
import hashlib
import json

import orjson
import pytest
from jsonschema import Draft202012Validator

from app.core.ingest.deadletter import dead_letter_record, key_bytes, raw_bytes
from app.core.ingest.decode import ARRAY, NDJSON, REASONS, DecodeLimits, Rejected, decode_requests
from tests.paths import ROOT

SCHEMA = json.loads((ROOT / "schemas" / "dead-letter.schema.json").read_text())
VALIDATOR = Draft202012Validator(SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER)
RECEIVED_S = calendar.timegm((2026, 1, 1, 0, 0, 1)) + 0.5
ALL_BYTES = bytes(range(256))


def record(rejected, key=b"checkout", **kw):
    args = dict(topic="requests", partition=3, offset=99, key=key, received_at_s=RECEIVED_S) | kw
    out = dead_letter_record(rejected, **args)
    assert isinstance(out, bytes)
    doc = orjson.loads(out)
    VALIDATOR.validate(doc)
    return doc


def test_fields():
    doc = record(Rejected("out_of_range", "field 'status' must be an integer 100-599, got 700", b"{}", 1, ARRAY))
    assert doc == {
        "reason": "out_of_range", "error": "field 'status' must be an integer 100-599, got 700",
        "topic": "requests", "partition": 3, "offset": 99, "key": "checkout", "key_encoding": "utf-8",
        "key_truncated": False, "raw": "e30=", "raw_encoding": "base64", "raw_truncated": False, "raw_length": 2,
        "raw_sha256": hashlib.sha256(b"{}").hexdigest(), "index": 1, "framing": "array", "summary": None,
        "received_at": "2026-01-01T00:00:01.500Z",
    }


@pytest.mark.parametrize("raw", [b"", b"{}", ALL_BYTES, b'\xff\xfe{"ts":1}', "caf\u00e9 \U0001f600".encode()])
def test_raw_is_lossless(raw):
    assert raw_bytes(record(Rejected("not_json", "x", raw))) == raw


@pytest.mark.parametrize("key, encoding", [
    (None, None), (b"", "utf-8"), (b"checkout", "utf-8"), ("m\u00fcnchen".encode(), "utf-8"),
    (b"\xff\x00\x10", "base64"), (ALL_BYTES, "base64"),
])
def test_key_is_text_when_utf8_else_base64_and_inverts(key, encoding):
    doc = record(Rejected("empty", "message is empty", b""), key=key)
    assert doc["key_encoding"] == encoding
    assert key_bytes(doc) == key


@pytest.mark.parametrize("reason", REASONS)
def test_every_reason_code_is_allowed_by_the_schema(reason):
    record(Rejected(reason, "text", b"x"))


def test_decoded_rejects_become_valid_records():
    raw = b'{"ts":1,"service":"a","latency_ms":1,"status":200}\n\xff\n[1]\n{"ts":1}'
    _, rejected = decode_requests(raw, RECEIVED_S, DecodeLimits(4096, 300.0))
    assert [r.reason for r in rejected] == ["not_utf8", "not_object", "missing_field"]
    docs = [record(r, partition=0, offset=7) for r in rejected]
    assert [(d["framing"], d["index"], raw_bytes(d)) for d in docs] == [
        (NDJSON, 1, b"\xff"), (NDJSON, 2, b"[1]"), (NDJSON, 3, b'{"ts":1}')]


def test_raw_bytes_rejects_corruption():
    doc = record(Rejected("not_json", "x", b"abc"))
    with pytest.raises(ValueError, match="'raw' is not valid base64"):
        raw_bytes(dict(doc, raw="YW*j"))
    with pytest.raises(ValueError, match="raw_encoding"):
        raw_bytes(dict(doc, raw_encoding="hex"))


def test_late_events_of_one_message_share_one_record_with_their_count() -> None:
    from types import SimpleNamespace

    from app.core.ingest.deadletter import late_rejection

    raw = b'[{"ts": 1}, {"ts": 2}, {"ts": 3}]'
    events = [SimpleNamespace(ts_s=float(t)) for t in (3, 1, 2)]
    bad = late_rejection(events, raw, 1, 70.0, 60)
    assert (bad.reason, bad.raw, bad.index, bad.summary["count"]) == ("late", raw, None, 3)
    assert bad.counts() == {"late": 3}
    assert "ts 1.0 to 3.0" in bad.error and "LENSBRIDGE_GRACE_SECONDS" in bad.error
    record = orjson.loads(dead_letter_record(bad, "requests", 1, 7, None, 1_700_000_000.0))
    assert raw_bytes(record) == raw and record["summary"]["reasons"] == {"late": 3}
    one = late_rejection(events[:1], raw, 1, 70.0, 60)
    assert one.summary is None and "window [0, 60)" in one.error
