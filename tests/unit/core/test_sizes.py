"""Record size bounds per topic (app/core/sizes.py, app/kafka/topic_sizes.py), measured on real
accumulators at the caps, and the start check's error text."""
import json
import random
from types import SimpleNamespace

import orjson
from jsonschema import Draft202012Validator

from app.core.ingest.deadletter import dead_letter_record
from app.core.ingest.decode import ARRAY, REASONS, RECORD_TOO_LARGE, Rejected
from app.core.ingest.events import WEB_VITALS, RequestEvent, RumEvent
from app.core.lenses import cx, sre
from app.core.sizes import (
    BATCH_OVERHEAD_BYTES,
    MAX_ALERT_LIST_ITEMS,
    MAX_STATE_BYTES,
    MAX_SUBJECT_CHARS,
    REFUSED_PREFIX_BYTES,
    bound_alert,
    cx_partial_bytes,
    dead_letter_bytes,
    fits,
    refused_record,
    size_problem,
    sre_partial_bytes,
    topic_limits,
)
from app.kafka.topic_sizes import (
    changelog_topic,
    effective_limits,
    input_notes,
    producer_max_request_size,
    record_limits,
    size_problems,
    topic_configs,
)
from app.settings import Settings
from tests.paths import ROOT

SCHEMAS = ROOT / "schemas"
# The worst subject name the cap allows: every character escaped as \u00XX in JSON.
WORST_SUBJECT = "\u0001" * MAX_SUBJECT_CHARS


def test_dead_letter_topic_limit_covers_base64_raw_plus_envelope():
    limits = topic_limits(1_048_576)
    assert limits["dlq"] == 4 * 349_526 + 64 * 1024 + BATCH_OVERHEAD_BYTES == 1_464_664
    assert all(limits[kind] == MAX_STATE_BYTES for kind in ("summaries", "windows", "alerts", "changelog"))
    assert topic_limits(100)["dlq"] == 1024 * 1024 + BATCH_OVERHEAD_BYTES  # never below one producer batch


def test_record_limits_name_every_topic_the_worker_writes_and_the_changelogs():
    settings = Settings(app_id="lb", topic_dlq="d", topic_summaries="s", topic_windows="w", topic_alerts="a")
    limits = record_limits(settings)
    assert set(limits) == {"d", "s", "w", "a", "lb-sre-state-changelog", "lb-cx-state-changelog",
                           "lb-joiner-state-changelog"}
    assert changelog_topic(settings, "cx-state") == "lb-cx-state-changelog"
    assert producer_max_request_size(settings) >= max(limits.values())
    assert topic_configs(settings, "d") == {"max.message.bytes": str(limits["d"])}
    assert topic_configs(settings, settings.topic_requests) == {}  # input topics: the user's


def test_largest_dead_letter_fits_its_bound():
    settings = Settings()
    raw = b"\xff" * settings.max_message_bytes
    bad = Rejected("wrong_type", "field 'x': expected a string, got " + "[" * 500, raw, 4_999, ARRAY)
    record = dead_letter_record(bad, "r" * 249, 2**31, 2**62, b"k" * 4096, 4_102_444_800.0)
    assert len(record) + 4096 <= dead_letter_bytes(settings.max_message_bytes)
    assert fits(b"k" * 4096, record, record_limits(settings)[settings.topic_dlq])


def _biggest_sre_partial(compression: int, window_s: int, slice_s: int) -> bytes:
    rng = random.Random(7)
    acc = sre.SreAccumulator(0, slice_s, compression)
    is_error = sre.parse_error_statuses("500-599")
    for _ in range(10):  # spread over every slice, latencies over 12 orders of magnitude
        acc.fold([RequestEvent(rng.uniform(0, window_s - 0.001), WORST_SUBJECT, 10 ** rng.uniform(-6, 6),
                               rng.choice((200, 503))) for _ in range(20_000)], is_error)
    return orjson.dumps(acc.to_partial(WORST_SUBJECT, 2**31 - 1, window_s))


def test_sre_partial_at_the_caps_fits_its_bound():
    for compression, window_s, slice_s in ((500, 60, 10), (2_000, 3_600, 1), (10, 60, 60)):
        value = _biggest_sre_partial(compression, window_s, slice_s)
        key = f"sre|{WORST_SUBJECT}|0".encode()
        bound = sre_partial_bytes(compression, window_s, slice_s)
        assert len(value) + len(key) <= bound <= MAX_STATE_BYTES, (compression, len(value), bound)
        assert bound < 2.5 * (len(value) + len(key)) + 4096  # and the bound is not loose


def test_cx_partial_at_the_caps_fits_its_bound():
    rng = random.Random(3)
    acc = cx.CxAccumulator(0, 500)
    for _ in range(5):
        events = [RumEvent(rng.uniform(0, 59.9), f"s{i}", "interactive", WORST_SUBJECT,
                           tti_ms=10 ** rng.uniform(0, 6)) for i in range(10_000)]
        events += [RumEvent(rng.uniform(0, 59.9), f"s{i}", "web_vital", WORST_SUBJECT,
                            name=WEB_VITALS[i % 5], value=10 ** rng.uniform(-3, 5)) for i in range(50_000)]
        acc.fold(events)
    value = orjson.dumps(acc.to_partial(WORST_SUBJECT, 2**31 - 1, 60))
    assert len(value) + len(WORST_SUBJECT) * 4 + 32 <= cx_partial_bytes(500)
    assert cx_partial_bytes(500) < MAX_STATE_BYTES


def _described(*resources):
    return [SimpleNamespace(resources=list(resources))]


def test_effective_limits_read_describe_configs_responses():
    found, errors = effective_limits(_described(
        (0, "", 2, "a", [("max.message.bytes", "1048588", False, 5, False, [])]),
        (3, "unknown", 2, "b", []), (29, None, 2, "c", [])))
    assert found == {"a": 1_048_588}
    assert errors == {"b": "error 3: unknown", "c": "error 29: TopicAuthorizationFailedError"}


def test_size_problems_name_topic_current_needed_and_the_fix():
    settings = Settings(topic_dlq="dead")
    needed = record_limits(settings)["dead"]
    problems = size_problems(settings, {"dead": 100_000, settings.topic_windows: MAX_STATE_BYTES, "other": 1})
    assert problems == [size_problem("dead", 100_000, needed)]
    text = problems[0]
    assert "'dead'" in text and "max.message.bytes=100000" in text and str(needed) in text
    assert (f"kafka-configs --bootstrap-server <broker> --alter --entity-type topics --entity-name dead "
            f"--add-config max.message.bytes={needed}") in text
    assert size_problems(settings, {"dead": needed}) == []
    assert "max.message.bytes=unknown" in size_problem("t", None, 5)


def test_input_topics_above_the_message_cap_get_a_note_not_an_error():
    settings = Settings(max_message_bytes=1_000_000)
    notes = input_notes(settings, {settings.topic_requests: 2_000_000, settings.topic_rum: 1_000_000})
    assert len(notes) == 1 and settings.topic_requests in notes[0] and "LENSBRIDGE_MAX_MESSAGE_BYTES" in notes[0]
    assert size_problems(settings, {settings.topic_requests: 10}) == []
    # The broker default (1048588) against the default cap (1048576): only batch overhead apart.
    defaults = Settings()
    assert input_notes(defaults, {defaults.topic_requests: 1_048_588, defaults.topic_rum: 1_048_588}) == []


def test_refused_record_is_a_small_schema_valid_dead_letter():
    value = b"x" * 5_000_000
    bad = refused_record("lens-windows", b"sre|svc|0", value, 1_048_588, "broker: MessageSizeTooLargeError")
    assert bad.reason == RECORD_TOO_LARGE in REASONS
    assert bad.raw == value[:REFUSED_PREFIX_BYTES]
    for fact in ("5000009-byte", "'lens-windows'", "1048588", "sha256"):
        assert fact in bad.error
    record = dead_letter_record(bad, "lens-windows", 0, 0, b"sre|svc|0", 1_700_000_000.0)
    assert len(record) < 4096
    schema = json.loads((SCHEMAS / "dead-letter.schema.json").read_text())
    Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER).validate(orjson.loads(record))


def _alert_validator():
    schema = json.loads((SCHEMAS / "alert.schema.json").read_text())
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def test_published_alert_lists_are_bounded_and_still_valid():
    example = json.loads((SCHEMAS / "examples/alert/valid/cx_dip_explained--firing.json").read_text())
    template = example["candidates"][0]
    many = [{**template, "service": f"svc-{i:05d}"} for i in range(10_000)]
    alert = {**example, "candidates": many, "services": sorted(c["service"] for c in many),
             "related_alert_ids": [f"{i:020x}" for i in range(10_000)]}
    _alert_validator().validate(alert)
    bounded = bound_alert(alert)
    assert bounded["candidates"] == many[:MAX_ALERT_LIST_ITEMS]  # ranked best first: the best stay
    assert bounded["truncated"] == {"candidates": 10_000, "services": 10_000, "related_alert_ids": 10_000}
    _alert_validator().validate(bounded)
    assert len(orjson.dumps(bounded)) < 1_000_000 < len(orjson.dumps(alert))
    assert alert["candidates"] is many  # the correlator's own copy is untouched
    assert bound_alert(example) == example and "truncated" not in bound_alert(example)


def test_bounded_impact_lists_of_an_sre_alert():
    example = json.loads((SCHEMAS / "examples/alert/valid/sre_dip_user_impacting--firing.json").read_text())
    cohort = example["impact"]["cohorts"][0]
    affected = [{**cohort, "cohort": f"c{i}"} for i in range(300)]
    alert = {**example, "cohorts": [c["cohort"] for c in affected],
             "impact": {**example["impact"], "cohorts": affected,
                        "dependent_cohorts": [f"c{i}" for i in range(300)]}}
    bounded = bound_alert(alert, max_items=50)
    assert bounded["impact"]["cohorts"] == affected[:50] and len(bounded["impact"]["dependent_cohorts"]) == 50
    assert bounded["truncated"] == {"cohorts": 300, "impact.cohorts": 300, "impact.dependent_cohorts": 300}
    assert len(alert["impact"]["cohorts"]) == 300
    _alert_validator().validate(bounded)
