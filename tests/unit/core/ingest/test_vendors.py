"""Vendor mappings on sample payloads written from the vendors' published formats
(schemas/examples/vendors/; sources in docs/VENDORS.md)."""
import json

import jsonschema
import orjson
import pytest

from app.core.ingest.decode import DecodeLimits, decode_rum
from app.core.ingest.vendors import to_native_rum
from app.core.lenses.cx import CxAccumulator
from app.core.lenses.digest import digest_from_any
from tests.paths import ROOT

SAMPLES = ROOT / "schemas" / "examples" / "vendors"
NOW_S = 1_700_000_400.0  # after every sample's event time
DD_SESSION = "0f6c1d0e-8a5b-4b52-9f7e-2c9d1a3e4b5f"
DD_VIEW = "b4e5c2a1-7d3f-4e8a-9b6c-1a2d3e4f5a6b"
OTEL_SESSION = "9b8a7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d"


def sample(name):
    return json.loads((SAMPLES / name).read_text())


def decode(obj):
    return decode_rum(orjson.dumps(obj), NOW_S, DecodeLimits(), cohort_keys=("device",))


def brief(events):
    """(type, name, value or tti) per native event, the part a reader checks first."""
    return [(e["type"], e.get("name"), e.get("value", e.get("tti_ms"))) for e in events]


# --- pass-through -------------------------------------------------------------------------


@pytest.mark.parametrize("obj", [
    {"ts": 1700000000, "session_id": "s", "type": "page_view", "resourceLogs": []},
    {"ts": 1700000000, "session_id": "s", "type": "rage_click", "meta": {}, "events": []},
    {"ts": 1700000000, "type": "teleport"},  # matches no vendor: the validator will say why
    {"type": "view"},  # Datadog-like but no session/date: not Datadog
    {"hello": "world"},
])
def test_native_and_unknown_objects_pass_through_unchanged(obj):
    out = to_native_rum(obj)
    assert out == [obj] and out[0] is obj


def test_all_samples_decode_without_rejections_except_the_broken_one():
    paths = sorted(SAMPLES.rglob("*.json"))
    assert len(paths) >= 8
    for path in paths:
        events, rejected = decode(json.loads(path.read_text()))
        if path.name == "web-vital-no-session.json":
            assert [r.reason for r in rejected] == ["missing_field"]
        else:
            assert rejected == [], (path.name, rejected)


def test_every_mapped_event_meets_the_rum_contract():
    schema = json.loads((SAMPLES.parents[1] / "rum-event.schema.json").read_text())
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    mapped = 0
    for path in sorted(SAMPLES.rglob("*.json")):
        if path.name == "web-vital-no-session.json":
            continue
        for event in to_native_rum(json.loads(path.read_text())):
            validator.validate(event)
            mapped += 1
    assert mapped == 22  # 2 + 1 + 7 Datadog, 3 OTel, 5 + 4 Faro


# --- Datadog ----------------------------------------------------------------------------


def test_datadog_action_one_event_per_frustration_type():
    out = to_native_rum(sample("datadog/action-frustration.json"))
    common = {"ts": 1700000042.123, "source": "datadog", "session_id": DD_SESSION,
              "view_id": DD_VIEW, "page": "https://shop.example.com/checkout",
              "user_id": "u-1042", "cohort": "mobile|FR",
              "services": ["checkout-api", "payments-api"]}
    assert out == [{**common, "type": "rage_click"}, {**common, "type": "error_click"}]


def test_datadog_final_view_gives_page_view_tti_and_vitals_in_ms():
    out = to_native_rum(sample("datadog/view-final.json"))
    assert brief(out) == [
        ("page_view", None, None),
        ("interactive", None, 1840.0),  # view.loading_time 1_840_000_000 ns
        ("web_vital", "LCP", 2310.0),
        ("web_vital", "INP", 176.0),
        ("web_vital", "CLS", 0.042),  # unitless, not scaled
        ("web_vital", "FCP", 905.0),
        ("web_vital", "TTFB", 212.0),
    ]  # first_input_delay (FID, retired) is dropped
    # Stamped at the view end: date 1700000030000 ms + time_spent 25.5 s.
    assert {e["ts"] for e in out} == {1700000055.5}
    assert {e["attributes"]["country"] for e in out} == {"FR"}
    assert {e["attributes"]["device"] for e in out} == {"mobile"}
    assert all(e["view_id"] == DD_VIEW and e["source"] == "datadog" for e in out)


def test_datadog_in_progress_view_and_unrelated_events_map_to_nothing():
    assert to_native_rum(sample("datadog/view-in-progress.json")) == []
    assert to_native_rum(sample("datadog/resource.json")) == []
    plain_click = {**sample("datadog/action-frustration.json"),
                   "action": {"type": "click", "target": {"name": "Buy"}}}
    assert to_native_rum(plain_click) == []


def test_datadog_api_envelope_is_unwrapped():
    out = to_native_rum(sample("datadog/api-event-dead-click.json"))
    assert brief(out) == [("dead_click", None, None)]
    assert out[0]["ts"] == 1700000045.25
    assert out[0]["attributes"] == {"device": "desktop", "country": "DE"}
    no_date = sample("datadog/api-event-dead-click.json")
    del no_date["attributes"]["attributes"]["date"]
    assert to_native_rum(no_date)[0]["ts"] == "2023-11-14T22:14:05.250Z"


def test_datadog_mobile_taps_and_unknown_kinds():
    action = sample("datadog/action-frustration.json")
    action["action"]["frustration"]["type"] = ["rage_tap", "error_tap", "shake_rage"]
    assert [e["type"] for e in to_native_rum(action)] == ["rage_click", "error_click", "shake_rage"]
    events, rejected = decode(action)
    assert len(events) == 2  # the unknown kind is dead-lettered, not dropped
    assert [r.reason for r in rejected] == ["unknown_type"]


def test_datadog_session_folds_into_the_cx_lens():
    events = []
    for name in ("datadog/view-final.json", "datadog/action-frustration.json"):
        decoded, rejected = decode(sample(name))
        assert rejected == []
        events += decoded
    acc = CxAccumulator(1_700_000_040)
    acc.fold(events)
    p = acc.to_partial("mobile|FR", 0, 60)
    assert (p["sessions"], p["page_views"], p["frustrated_sessions"]) == (1, 1, 1)
    assert p["frustration_events"] == {"error_click": 1, "rage_click": 1}
    assert digest_from_any(p["tti_ms_digest"]).n_values == 1
    assert sorted(p["web_vitals"]) == ["CLS", "FCP", "INP", "LCP", "TTFB"]
    # Same view on both events: each service counts one page view.
    assert p["services"] == {"catalog-api": 1, "checkout-api": 1, "payments-api": 1}


# --- OpenTelemetry ----------------------------------------------------------------------


def test_otel_web_vital_events_from_attributes_body_and_legacy_event_name():
    out = to_native_rum(sample("otel/web-vitals-logs.json"))
    assert brief(out) == [("web_vital", "LCP", 2450.5),  # browser.web_vital.* attributes
                          ("web_vital", "INP", 232),  # semconv body fields, intValue
                          ("web_vital", "CLS", 0.18)]  # event.name attribute (older SDKs)
    # The FID record (retired vital) and the error log are not web vitals we keep.
    assert [e["ts"] for e in out] == [1700000031.25, 1700000058.0, 1700000058.0]
    assert all(e["session_id"] == OTEL_SESSION and e["source"] == "otel" for e in out)
    assert {e["cohort"] for e in out} == {"desktop|DE"}  # from the resource
    assert {e["attributes"]["device"] for e in out} == {"desktop"}  # browser.mobile false
    assert out[0]["services"] == ["catalog-api"] and out[0]["page"] == "https://shop.example.com/"


def test_otel_record_without_session_is_dead_lettered_not_dropped():
    out = to_native_rum(sample("otel/web-vital-no-session.json"))
    assert brief(out) == [("web_vital", "TTFB", 640.0)] and "session_id" not in out[0]
    events, rejected = decode(sample("otel/web-vital-no-session.json"))
    assert events == [] and "session_id" in rejected[0].error


# --- Grafana Faro ---------------------------------------------------------------------


def test_faro_payload_frustrations_navigation_and_web_vitals():
    out = to_native_rum(sample("faro/transport-payload.json"))
    assert brief(out) == [("page_view", None, None), ("rage_click", None, None),
                          ("dead_click", None, None), ("web_vital", "LCP", 1980.4),
                          ("web_vital", "CLS", 0.03)]  # fid, session_start, cart dropped
    assert [e["ts"] for e in out] == ["2023-11-14T22:14:00.500Z", "2023-11-14T22:14:03.100Z",
                                      "2023-11-14T22:14:04.000Z", "2023-11-14T22:14:02.000Z",
                                      "2023-11-14T22:14:09.000Z"]
    assert {e["view_id"] for e in out} == {"pg-41"}  # meta.page.id wins when present
    assert {e["cohort"] for e in out} == {"desktop|US"}
    assert {tuple(sorted(e["attributes"].items())) for e in out} == {
        (("device", "desktop"), ("plan", "free"))}
    assert [e.get("services") for e in out] == [["search-api", "catalog-api"]] + [None] * 4


def test_faro_without_page_id_links_vitals_to_the_navigation():
    out = to_native_rum(sample("faro/spa-without-page-id.json"))
    assert [(e["type"], e.get("name"), e.get("view_id")) for e in out] == [
        ("page_view", None, "nav-Kp3r"), ("error_click", None, None),
        ("web_vital", "FCP", "nav-Kp3r"), ("web_vital", "TTFB", "nav-Kp3r")]
    events, rejected = decode(sample("faro/spa-without-page-id.json"))
    assert rejected == [] and {e.cohort for e in events} == {"device=mobile"}


def test_odd_optional_vendor_fields_are_left_out_not_dead_lettered():
    action = sample("datadog/action-frustration.json")
    action["usr"] = {"id": 1042}  # a number where we keep strings
    action["view"]["url"] = None
    action["context"] = {"cohort": 7, "services": "checkout-api, ,payments-api"}
    out = to_native_rum(action)
    assert "user_id" not in out[0] and "page" not in out[0] and "cohort" not in out[0]
    assert out[0]["services"] == ["checkout-api", "payments-api"]
    events, rejected = decode(action)
    assert len(events) == 2 and rejected == []
