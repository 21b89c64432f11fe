"""Alert latency arithmetic: which window decides an alert and when it closed (no broker)."""
import pytest

from app.bench.latency import alert_latencies, summarize_latencies

START = 1_000_000_000  # scenario start (event time), a multiple of 10
WALL0 = 5_000.0  # wall clock when publishing started


def _alert(window_start: int, status: str = "firing", seq: int = 0) -> dict:
    return {"alert_id": f"a{window_start}", "kind": "sre_dip_no_user_impact", "status": status,
            "update_seq": seq, "window_start": window_start}


def _wm(lens: str, partition: int, watermark: float) -> dict:
    return {"lens": lens, "type": "watermark", "partition": partition, "watermark": watermark}


def test_latency_counts_from_the_close_of_the_window_that_made_the_alert_decidable():
    # Alert about window [START+100, START+110); with one window of correlation lag it is decidable
    # once both lenses are complete through START+120, i.e. once ts START+122 (grace 2) was published.
    # At speed 2 that is wall WALL0 + 61. The alert landed at WALL0 + 61.8.
    alerts = [(int((WALL0 + 61.8) * 1000), _alert(START + 100))]
    marks = [(int((WALL0 + 61.3) * 1000), _wm("sre", 0, START + 120.5)),
             (int((WALL0 + 61.5) * 1000), _wm("cx", 0, START + 121.0)),
             (int((WALL0 + 60.0) * 1000), _wm("cx", 0, START + 110.0))]  # not far enough yet
    (row,) = alert_latencies(alerts, marks, wall0=WALL0, start_s=START, speed=2.0, window_s=10, grace_s=2.0,
                             lag_windows=1, last_ts_s=START + 600)
    assert row["decidable_through"] == START + 120
    assert row["latency_s"] == pytest.approx(0.8)
    assert row["joiner_latency_s"] == pytest.approx(0.3)  # after the later of the two watermark records
    assert row["from_incident_window_close_s"] == pytest.approx(5.8)  # includes the 1-window wait
    assert not row["after_input_end"]


def test_joiner_latency_unknown_when_a_partition_never_reported_the_watermark():
    alerts = [(int((WALL0 + 70) * 1000), _alert(START + 100))]
    marks = [(1, _wm("sre", 0, START + 200)), (1, _wm("cx", 1, START + 50))]
    (row,) = alert_latencies(alerts, marks, wall0=WALL0, start_s=START, speed=1.0, window_s=10, grace_s=2.0,
                             lag_windows=1, last_ts_s=START + 600)
    assert row["joiner_latency_s"] is None


def test_alerts_decided_after_the_input_ended_are_reported_apart():
    alerts = [(int((WALL0 + 300) * 1000), _alert(START + 590, status="resolved", seq=3)),
              (int((WALL0 + 61) * 1000), _alert(START + 100))]
    rows = alert_latencies(alerts, [], wall0=WALL0, start_s=START, speed=2.0, window_s=10, grace_s=2.0,
                           lag_windows=1, last_ts_s=START + 600)
    assert [r["after_input_end"] for r in rows] == [True, False]
    summary = summarize_latencies(rows)
    assert summary["all_messages"]["n"] == 1
    assert summary["first_firing"]["p50"] == pytest.approx(0.0)
    assert len(summary["after_input_end"]) == 1
