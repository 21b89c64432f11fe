"""Incident lifecycle: episodes, ids, emission policy, upgrade-only verdicts, summaries."""
import hashlib

import orjson

from app.core.detect.dips import DetectionConfig
from app.core.detect.incidents import IncidentBook, alert_id, evidence_entry, relative_change, step_episode

W = 60
CFG = DetectionConfig()
CHECK = {"value": 0.25, "baseline": 0.05, "threshold": 0.1, "dip": True, "size": 0.8}
SLOW = {"value": 800.0, "baseline": 200.0, "threshold": 300.0, "dip": True, "size": 0.75}


def cx_verdict(kind="cx_dip_unexplained", severity="warning", candidates=(), value=0.25):
    own = evidence_entry("cx", "web", 0, "frustration_ratio", {**CHECK, "value": value})
    other = [evidence_entry("sre", c["service"], 0, "latency_p95_ms", SLOW) for c in candidates]
    return {"kind": kind, "lens": "cx", "subject": "web", "severity": severity,
            "services": sorted(c["service"] for c in candidates), "cohorts": ["web"],
            "evidence": [own] + other, "candidates": list(candidates),
            "impact": {"sessions": 400, "session_share": 0.5, "page_views": 1200,
                       "traffic_vs_usual": 1.0, "dependency_links": True},
            "correlations": [], "related_alert_ids": []}


CANDIDATE = {"service": "checkout", "score": 0.45, "metric": "latency_p95_ms", "change": 3.0,
             "window_start": 0, "offset_windows": 0, "size": 0.75, "alignment": 1.0,
             "dependency_share": 0.6, "explanation": "..."}


def test_episode_opens_on_a_dip_and_closes_after_resolve_windows_healthy():
    ep, event = step_episode(None, False, 0, 2)
    assert (ep, event) == (None, None)
    ep, event = step_episode(None, True, 60, 2)
    assert (ep, event) == ({"start": 60, "healthy": 0}, "open")
    ep, event = step_episode(ep, False, 120, 2)
    assert (ep, event) == ({"start": 60, "healthy": 1}, "healthy")
    ep, event = step_episode(ep, True, 180, 2)  # a dip resets the healthy streak
    assert (ep, event) == ({"start": 60, "healthy": 0}, "dip")
    ep, _ = step_episode(ep, False, 240, 2)
    assert step_episode(ep, False, 300, 2) == (None, "close")


def test_alert_id_is_a_fingerprint_of_lens_subject_and_start():
    expected = hashlib.sha1(b"cx_dip|web|1767225600").hexdigest()[:20]
    assert alert_id("cx", "web", 1767225600) == expected
    assert len({alert_id("cx", "web", 0), alert_id("sre", "web", 0),
                alert_id("cx", "web", 60), alert_id("cx", "mobile", 0)}) == 4


def test_evidence_change_is_relative_and_signed():
    assert relative_change({"value": 0.5, "baseline": 1.0}) == -0.5
    assert relative_change({"value": 0.02, "baseline": 0.0}) is None
    e = evidence_entry("sre", "api", 60, "latency_p95_ms", SLOW)
    assert (e["value"], e["baseline"], e["change"], e["dip"]) == (800.0, 200.0, 3.0, True)


def test_fires_once_then_stays_quiet_while_nothing_material_changes():
    book = IncidentBook(CFG)
    first = book.on_dip(cx_verdict(), 0, 0)
    assert [(a["status"], a["update_seq"]) for a in first] == [("firing", 0)]
    assert first[0]["alert_id"] == alert_id("cx", "web", 0)
    assert book.on_dip(cx_verdict(value=0.3), 0, W) == []  # numbers moved, verdict did not


def test_material_change_and_heartbeat_re_emit_under_the_same_id():
    book = IncidentBook(CFG)
    book.on_dip(cx_verdict(), 0, 0)
    upgraded = book.on_dip(cx_verdict("cx_dip_explained", candidates=[CANDIDATE]), 0, W)
    assert [(a["kind"], a["update_seq"]) for a in upgraded] == [("cx_dip_explained", 1)]
    assert book.on_dip(cx_verdict("cx_dip_explained", candidates=[CANDIDATE]), 0, 2 * W) == []
    beat = book.on_dip(cx_verdict("cx_dip_explained", candidates=[CANDIDATE]), 0, 6 * W)
    assert [(a["update_seq"], a["window_start"]) for a in beat] == [(2, 6 * W)]
    assert {a["alert_id"] for a in upgraded + beat} == {alert_id("cx", "web", 0)}


def test_verdicts_only_upgrade_and_severity_is_never_lowered():
    book = IncidentBook(CFG)
    book.on_dip(cx_verdict("cx_dip_explained", "critical", [CANDIDATE]), 0, 0)
    assert book.on_dip(cx_verdict("cx_dip_unexplained", "warning", value=0.4), 0, W) == []
    resolved = book.on_close("cx", "web", 2 * W, {"frustration_ratio": {**CHECK, "value": 0.05,
                                                                         "dip": False}})
    alert = resolved[0]
    assert (alert["status"], alert["kind"], alert["severity"]) == (
        "resolved", "cx_dip_explained", "critical")
    assert alert["candidates"] == [CANDIDATE] and alert["update_seq"] == 1
    own = [e for e in alert["evidence"] if e["subject"] == "web"]
    assert [(e["value"], e["dip"], e["window_start"]) for e in own] == [(0.05, False, 2 * W)]
    assert [e["subject"] for e in alert["evidence"] if e["lens"] == "sre"] == ["checkout"]
    assert "after 2 dipping window(s)" in alert["summary"]
    assert book.on_close("cx", "web", 3 * W, {}) == []  # nothing open any more


def test_heartbeat_can_be_turned_off():
    book = IncidentBook(DetectionConfig(reemit_every_windows=0))
    book.on_dip(cx_verdict(), 0, 0)
    assert book.on_dip(cx_verdict(), 0, 100 * W) == []


def test_open_incidents_survive_a_round_trip():
    book = IncidentBook(CFG)
    book.on_dip(cx_verdict(), 0, 0)
    state = orjson.loads(orjson.dumps(book.to_state()))
    again = IncidentBook(CFG, state)
    assert again.active() == [(alert_id("cx", "web", 0), "cx_dip_unexplained", "cx", "web")]
    a = again.on_dip(cx_verdict("cx_dip_explained", candidates=[CANDIDATE]), 0, W)
    b = book.on_dip(cx_verdict("cx_dip_explained", candidates=[CANDIDATE]), 0, W)
    assert orjson.dumps(a) == orjson.dumps(b)


def test_summaries_read_like_a_pager_line():
    book = IncidentBook(CFG)
    unexplained = book.on_dip(cx_verdict(), 0, 0)[0]["summary"]
    assert unexplained == ("Users of cohort web hurting: frustration_ratio 25.0% vs usual 5.0% "
                           "(+400%); no backend service they depend on moved: look at the "
                           "frontend, content or third parties.")
    explained = book.on_dip(cx_verdict("cx_dip_explained", candidates=[CANDIDATE]), 0, W)
    assert explained[0]["summary"].endswith(
        "likely cause: service checkout latency_p95_ms +300% (score 0.45).")
