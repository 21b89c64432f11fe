"""The input contracts: every example against its schema, and the decoder against the schema.

Invalid examples are named `<reason>--<what>.json`: the decoder must reject them
with that reason. The decoder runs with a clock far in the future, because
future skew is a property of the stream, not of the record (the schema cannot
express it; test_decode.py covers it).
"""
import base64
import hashlib
import json

import orjson
import pytest
from jsonschema import Draft202012Validator

from app.core.ingest.deadletter import key_bytes, raw_bytes
from app.core.ingest.decode import REASONS, DecodeLimits, decode_requests, decode_rum
from app.core.ingest.events import RUM_TYPES, WEB_VITALS
from tests.paths import ROOT

SCHEMAS = ROOT / "schemas"
EXAMPLES = SCHEMAS / "examples"
OURS = ("request", "rum-event", "dead-letter")
FAR_FUTURE_S = 7_000_000_000.0  # year 2191: no example is "in the future"
LIMITS = DecodeLimits(max_message_bytes=1 << 20, max_future_skew_s=300.0)
DECODERS = {
    "request": lambda raw: decode_requests(raw, FAR_FUTURE_S, LIMITS),
    "rum-event": lambda raw: decode_rum(raw, FAR_FUTURE_S, LIMITS, ("device", "country")),
}


def schema(name):
    return json.loads((SCHEMAS / f"{name}.schema.json").read_text())


def validator(name):
    return Draft202012Validator(schema(name), format_checker=Draft202012Validator.FORMAT_CHECKER)


def examples(name, kind):
    paths = sorted((EXAMPLES / name / kind).glob("*.json"))
    assert len(paths) >= 5, f"too few {kind} examples for {name}"
    return paths


def cases(kind, names=OURS):
    return [pytest.param(name, path, id=f"{name}/{path.stem}")
            for name in names for path in examples(name, kind)]


@pytest.mark.parametrize("name", OURS)
def test_schema_is_valid_2020_12(name):
    Draft202012Validator.check_schema(schema(name))


@pytest.mark.parametrize("name, path", cases("valid"))
def test_valid_example_passes_schema(name, path):
    validator(name).validate(json.loads(path.read_bytes()))


@pytest.mark.parametrize("name, path", cases("invalid"))
def test_invalid_example_fails_schema(name, path):
    errors = list(validator(name).iter_errors(json.loads(path.read_bytes())))
    assert errors, f"{path.name} unexpectedly passes {name}.schema.json"


@pytest.mark.parametrize("name, path", cases("valid", DECODERS))
def test_decoder_accepts_every_valid_example(name, path):
    events, rejected = DECODERS[name](path.read_bytes())
    assert rejected == [] and len(events) == 1


@pytest.mark.parametrize("name, path", cases("invalid", DECODERS))
def test_decoder_rejects_every_invalid_example_with_the_named_reason(name, path):
    events, rejected = DECODERS[name](path.read_bytes())
    expected_reason = path.stem.split("--")[0]
    assert events == []
    assert [r.reason for r in rejected] == [expected_reason]
    assert rejected[0].raw == path.read_bytes()


@pytest.mark.parametrize("name", DECODERS)
def test_a_batch_of_all_valid_examples_decodes_to_one_event_each(name):
    objs = [json.loads(p.read_bytes()) for p in examples(name, "valid")]
    events, rejected = DECODERS[name](orjson.dumps(objs))
    assert rejected == [] and len(events) == len(objs)


def test_enums_match_the_code():
    rum = schema("rum-event")
    assert tuple(rum["properties"]["type"]["enum"]) == RUM_TYPES
    vital_then = rum["allOf"][1]["then"]["properties"]["name"]["enum"]
    assert tuple(vital_then) == WEB_VITALS
    assert tuple(schema("dead-letter")["properties"]["reason"]["enum"]) == REASONS


def test_request_and_rum_share_one_timestamp_definition():
    assert schema("request")["$defs"]["timestamp"] == schema("rum-event")["$defs"]["timestamp"]


@pytest.mark.parametrize("path", examples("dead-letter", "valid"), ids=lambda p: p.stem)
def test_valid_dead_letters_invert_to_bytes(path):
    record = json.loads(path.read_bytes())
    raw = raw_bytes(record)
    assert base64.b64encode(raw).decode() == record["raw"]
    key = key_bytes(record)
    assert (key is None) == (record["key"] is None)
    # raw_length and raw_sha256 describe the full bytes; they are raw's own unless truncated.
    if record["raw_truncated"]:
        assert len(raw) < record["raw_length"]
    else:
        assert len(raw) == record["raw_length"]
        assert hashlib.sha256(raw).hexdigest() == record["raw_sha256"]
