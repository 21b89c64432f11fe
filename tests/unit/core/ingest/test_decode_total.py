"""Decoding is total: property-based attacks on every decode entry point.

Arbitrary bytes, arbitrary JSON values and the real example payloads (schemas/examples,
tests/data) with one to three paths mutated to every JSON type, huge numbers, huge strings
and deep nesting, framed as one object, an array and NDJSON, go to `decode_requests`,
`decode_rum` and the vendor mapping. Nothing may raise; every rejected element carries a
reason of REASONS (never `processing_error`: that would be a decoder bug the guard hid) and
a short error text; every accepted event obeys the caps; and good events beside a bad one
are still decoded. Deterministic (`derandomize`, no example database); about 21,000
examples in all.
"""
import json
from collections import Counter

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.core.ingest.decode import (
    MAX_CLS,
    MAX_ERROR_CHARS,
    PROCESSING_ERROR,
    REASONS,
    DecodeLimits,
    decode_requests,
    decode_rum,
)
from app.core.ingest.events import RUM_TYPES, RequestEvent, RumEvent
from app.core.ingest.fields import Invalid
from app.core.ingest.render import MAX_SHOWN_CHARS, show_value
from app.core.ingest.timeparse import parse_ts
from app.core.ingest.vendors import to_native_rum
from tests.paths import ROOT

EXAMPLES = ROOT / "schemas" / "examples"
NOW_S = 1_800_000_000.0  # 2027: every example's time is in the past
LIMITS = DecodeLimits(max_message_bytes=1 << 20, max_subject_chars=64, max_latency_ms=600_000.0)
KEYS = ("device", "country")
GOOD_REQUEST = {"ts": 1_767_225_600, "service": "checkout", "latency_ms": 12.5, "status": 200}
GOOD_RUM = {"ts": 1_767_225_600, "session_id": "s-1", "type": "page_view", "services": ["cart"]}


def _parse(raw):
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None


def _load(*globs):
    return [json.loads(p.read_bytes()) for g in globs for p in sorted(EXAMPLES.glob(g))]


BAD_LINES = (ROOT / "tests" / "data" / "bad_lines.ndjson").read_bytes().split(b"\n")
REQUEST_SEEDS = _load("request/*/*.json") + [GOOD_REQUEST]
REQUEST_SEEDS += [obj for obj in map(_parse, BAD_LINES) if isinstance(obj, dict)]
RUM_SEEDS = _load("rum-event/*/*.json", "vendors/*/*.json") + [GOOD_RUM]


def run(max_examples):
    return settings(max_examples=max_examples, derandomize=True, database=None, deadline=None,
                    suppress_health_check=list(HealthCheck), print_blob=False)


# --- values ---------------------------------------------------------------------------------


class Raw:
    """JSON text spliced in verbatim: nesting deeper than any encoder allows, huge integers."""

    def __init__(self, text):
        self.text = text


def encode(doc) -> bytes:
    raws = []

    def token(obj):
        raws.append(obj.text)
        return f"@@raw{len(raws) - 1}@@"

    text = json.dumps(doc, default=token)
    for i, raw in enumerate(raws):
        text = text.replace(f'"@@raw{i}@@"', raw, 1)
    return text.encode("utf-8", "surrogatepass")


def _deep(n, kind):
    if kind == "array":
        return "[" * n + "]" * n
    if kind == "object":
        return '{"a":' * n + "1" + "}" * n
    # OTLP AnyValue nesting: three JSON levels per step.
    return '{"arrayValue":{"values":[' * (n // 3) + '{"intValue":"7"}' + "]}}" * (n // 3)


SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**64), 2**64), st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([1.7976931348623157e308, -1.7976931348623157e308, 5e-324, 1e300, -0.0, 2**63, -(2**63) - 1]),
    st.text(max_size=12),
    st.sampled_from(RUM_TYPES + ("view", "action", "vital", "rum", "rage_tap", "web-vitals", "LCP", "cls", "fid",
                                 "browser.web_vital", "faro.frustration.rage_click", "faro.performance.navigation")),
    st.sampled_from(["2026-01-01T00:00:00Z", "9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59",
                     "2026-02-30T00:00:00Z", "2026-01-01T23:59:60z", "2026-01-01T00:00:00." + "9" * 500 + "Z"]),
    st.integers(0, 10**450).map(str),  # int64 strings and far beyond (timeUnixNano, intValue)
)
HUGE = st.one_of(
    st.integers(300, 200_000).map(lambda n: "x" * n),
    st.integers(100, 50_000).map(lambda n: "é" * n),
    st.integers(20, 5000).map(lambda n: Raw("9" * n)), st.integers(20, 400).map(lambda n: Raw("-" + "9" * n)),
    st.integers(1, 5000).map(lambda n: [0] * n),
    st.sampled_from(["1e999", "-1e999", "NaN", "Infinity", '"\\ud800"']).map(Raw),  # invalid JSON
)
# orjson reads up to 1,024 levels and writes at most 254; Python recurses up to ~1,000.
DEPTHS = st.sampled_from([1000, 1010, 1020, 1000, 1010, 1020, 254, 255, 1025]) | st.integers(1, 1100)
DEEP = st.builds(lambda n, kind: Raw(_deep(n, kind)), DEPTHS,
                 st.sampled_from(["array", "object", "otlp"]))
JSON = st.recursive(SCALARS, lambda kids: st.lists(kids, max_size=4) | st.dictionaries(
    st.text(max_size=6), kids, max_size=4), max_leaves=12)
NASTY = st.one_of(SCALARS, HUGE, DEEP, JSON)


def _paths(doc, prefix=()):
    yield prefix
    items = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else ()
    for key, value in items:
        yield from _paths(value, prefix + (key,))


def _set(doc, path, value):
    """A copy of `doc` with the value at `path` replaced (`...` deletes it)."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    copy = dict(doc) if isinstance(doc, dict) else list(doc)
    if rest or value is not ...:
        copy[head] = _set(doc[head], rest, value)
    else:
        del copy[head]
    return copy


@st.composite
def mutated(draw, seeds):
    """A seed with one to three of its paths (not the root: test_arbitrary_json_values) mutated."""
    doc = draw(st.sampled_from(seeds))
    for _ in range(draw(st.sampled_from([1, 1, 1, 2, 3]))):
        paths = list(_paths(doc))[1:]
        if not paths:
            break
        doc = _set(doc, draw(st.sampled_from(paths)), draw(st.just(...) | NASTY))
    return doc


# --- the properties -------------------------------------------------------------------------


def check(events, rejected):
    """What every decode result must satisfy, whatever went in."""
    for r in rejected:
        assert r.reason in REASONS and r.reason != PROCESSING_ERROR, r
        assert type(r.error) is str and 0 < len(r.error) <= MAX_ERROR_CHARS, r.error
        assert type(r.raw) is bytes
    for ev in events:
        if type(ev) is RequestEvent:
            assert type(ev.service) is str and 0 < len(ev.service) <= LIMITS.max_subject_chars
            assert type(ev.latency_ms) is float and 0 <= ev.latency_ms <= LIMITS.max_latency_ms
            assert type(ev.status) is int and 100 <= ev.status <= 599
        else:
            assert type(ev) is RumEvent and ev.type in RUM_TYPES
            names = (ev.session_id, ev.cohort, *ev.services) + ((ev.view_id,) if ev.view_id else ())
            assert all(type(n) is str and 0 < len(n) <= LIMITS.max_subject_chars for n in names)
            for v in (ev.tti_ms, ev.value):
                assert v is None or 0 <= v <= max(LIMITS.max_latency_ms, MAX_CLS)
        assert type(ev.ts_s) is float and 0 <= ev.ts_s <= NOW_S + LIMITS.max_future_skew_s


DECODERS = {
    "requests": (lambda raw: decode_requests(raw, NOW_S, LIMITS), GOOD_REQUEST),
    "rum": (lambda raw: decode_rum(raw, NOW_S, LIMITS, KEYS), GOOD_RUM),
}


def good_beside_bad(name, bad: bytes):
    """[good, bad, good] and good\\nbad\\ngood: checked, and both good events decoded."""
    decode, good_obj = DECODERS[name]
    good = orjson.dumps(good_obj)
    (good_event,), _ = decode(good)
    for framed, framing in ((b"[" + good + b"," + bad + b"," + good + b"]", "array"),
                            (good + b"\n" + bad + b"\n" + good, "ndjson")):
        events, rejected = decode(framed)
        check(events, rejected)
        if framing == "ndjson" or _parse(framed) is not None:  # an array must still parse as JSON
            assert Counter(events)[good_event] >= 2, (framing, rejected[:3])


@run(3000)
@given(raw=st.binary(max_size=600) | st.lists(st.binary(max_size=80), max_size=6).map(b"\n".join) | st.none())
def test_arbitrary_bytes(raw):
    for name, (decode, _) in DECODERS.items():
        check(*decode(raw))
        good_beside_bad(name, raw or b"")


@run(3000)
@given(doc=NASTY)
def test_arbitrary_json_values(doc):
    raw = encode(doc)
    for name, (decode, _) in DECODERS.items():
        check(*decode(raw))
        good_beside_bad(name, raw)


@run(6000)
@given(doc=mutated(REQUEST_SEEDS))
def test_mutated_request_examples(doc):
    raw = encode(doc)
    check(*decode_requests(raw, NOW_S, LIMITS))
    good_beside_bad("requests", raw)


@run(7000)
@given(doc=mutated(RUM_SEEDS))
def test_mutated_rum_and_vendor_examples(doc):
    raw = encode(doc)
    check(*decode_rum(raw, NOW_S, LIMITS, KEYS))
    good_beside_bad("rum", raw)
    obj = _parse(raw)
    if isinstance(obj, dict):
        try:
            natives = to_native_rum(obj)
        except Invalid as exc:  # only a vendor container of the wrong type: decode_rum dead-letters it
            assert exc.reason == "wrong_type"
        else:
            assert type(natives) is list


@run(1000)
@given(value=NASTY | st.integers(1, 5000).map(lambda n: _python_deep(n)) | st.integers(4300, 20_000).map(
    lambda digits: 10**digits))
def test_show_value_is_bounded(value):
    if isinstance(value, Raw):
        value = value.text
    text = show_value(value)
    assert type(text) is str and 0 < len(text) <= MAX_SHOWN_CHARS


@run(1000)
@given(value=NASTY)
def test_parse_ts_raises_only_value_errors_with_short_texts(value):
    value = _parse(value.text.encode()) if isinstance(value, Raw) else value
    try:
        ts_s = parse_ts(value)
    except ValueError as exc:
        assert 0 < len(str(exc)) <= MAX_ERROR_CHARS
    else:
        assert type(ts_s) is float and ts_s >= 0


def _python_deep(n):
    value = []
    for _ in range(n):
        value = [value]
    return value


# --- every path of every example, to every kind of value (exhaustive, not sampled) ------------

EVERY_KIND = [..., None, True, False, 0, -1, 1.5, 2**64 - 1, -(2**63), 1.7976931348623157e308, "", "x", "-5",
              "9" * 400, "9" * 5000, "1e999", "2026-01-01T00:00:00Z", "x" * 5000, [], [1, "a", None], {}, {"a": []},
              Raw("9" * 30), Raw(_deep(1000, "array")), Raw(_deep(1000, "object")), Raw(_deep(1000, "otlp"))]


def _seed_params(glob):
    return [(p.relative_to(EXAMPLES).as_posix(), json.loads(p.read_bytes())) for p in sorted(EXAMPLES.glob(glob))]


SEED_FILES = {"requests": _seed_params("request/*/*.json"),
              "rum": _seed_params("rum-event/*/*.json") + _seed_params("vendors/*/*.json")}


def test_every_path_of_every_example_to_every_kind_of_value():
    decoded = 0
    for name, seeds in SEED_FILES.items():
        decode, _ = DECODERS[name]
        for _path_name, seed in seeds:
            for path in _paths(seed):
                for value in EVERY_KIND if path else EVERY_KIND[1:]:
                    raw = encode(_set(seed, path, value))
                    check(*decode(raw))
                    decoded += 1
    assert decoded > 20_000
