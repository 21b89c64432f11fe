"""Burn rates on scripted windows: each pair trips at its threshold and not one bad event
below, the low-traffic guard, the incident lifecycle of pages and tickets."""
import pytest

from app.core.slo.engine import SloConfig, SloEngine
from app.core.slo.spec import PAGE, TICKET, WORKBOOK_WINDOWS, BurnWindow, Slo
from app.core.slo.track import SloTracker

W = 60
T0 = 1767225600  # 2026-01-01 00:00 UTC: a multiple of every window and bucket
R = 10_000  # requests per window where traffic does not matter


def window(i, requests, errors, service="checkout"):
    start = T0 + i * W
    return {"lens": "sre", "subject": service, "window_start": start, "window_end": start + W,
            "requests": requests, "errors": errors}


def spread(total, n):
    """`total` errors over `n` windows, as evenly as integers allow."""
    return [total // n + (1 if k < total % n else 0) for k in range(n)]


def run_pair(pair, long_bad, short_bad, objective=99.9):
    """A history of exactly the pair's long window at R requests per window: `long_bad - short_bad`
    errors before the short window, `short_bad` in it. Returns the final reading."""
    slo = Slo("checkout", "availability", objective, windows=(pair,))
    tracker = SloTracker(slo, SloConfig())
    n_long, n_short = pair.long_s // W, pair.short_s // W
    errors = spread(long_bad - short_bad, n_long - n_short) + spread(short_bad, n_short)
    for i, e in enumerate(errors):
        tracker.observe(T0 + i * W, R, e)
    (reading,) = tracker.readings(tracker.evaluated_until)
    return reading


@pytest.mark.parametrize("pair", WORKBOOK_WINDOWS, ids=lambda p: p.label)
def test_each_pair_trips_at_its_threshold_and_not_one_bad_event_below(pair):
    # Exactly factor x budget in both windows: 14.4 x 0.1 % = 1.44 % over 1 h and over 5 m.
    long_at = round(pair.factor * 0.001 * (pair.long_s // W) * R)
    short_at = round(pair.factor * 0.001 * (pair.short_s // W) * R)
    at = run_pair(pair, long_at, short_at)
    assert at["tripped"] and at["long"]["over"] and at["short"]["over"]
    assert at["long"]["burn"] == pytest.approx(pair.factor)
    assert at["short"]["burn"] == pytest.approx(pair.factor)
    assert not run_pair(pair, long_at - 1, short_at)["tripped"]  # long window just below
    assert not run_pair(pair, long_at, short_at - 1)["tripped"]  # short window just below


def test_the_short_window_alone_does_not_trip_and_neither_does_the_long():
    pair = WORKBOOK_WINDOWS[0]
    assert not run_pair(pair, 720, 720)["tripped"]  # 5 m burning at 14.4x, 1 h at 1.2x
    assert not run_pair(pair, 8640, 0)["tripped"]  # 1 h at 14.4x, but it stopped 5 m ago


def test_burn_rate_is_error_ratio_over_budget():
    reading = run_pair(WORKBOOK_WINDOWS[0], 1200, 100, objective=99.0)
    assert reading["long"]["burn"] == pytest.approx((1200 / 600_000) / 0.01)
    assert reading["short"]["burn"] == pytest.approx((100 / 50_000) / 0.01)


# ---- the low-traffic guard -----------------------------------------------------------------
def engine(**cfg):
    return SloEngine([Slo("checkout", "availability", 99.9)], SloConfig(**cfg))


def feed(eng, windows):
    alerts = []
    for w in windows:
        alerts += eng.on_window(w)
    return alerts


def test_a_handful_of_errors_at_3am_does_not_page():
    eng = engine()
    n = 3 * 1440  # three days at 3 requests a minute
    quiet = [window(i, 3, 0) for i in range(n)]
    blip = [window(n, 3, 3)]  # 3 errors: 1.7 % over 1 h (16.7x the budget), 20 % over 5 m
    alerts = feed(eng, quiet + blip + [window(n + 1 + i, 3, 0) for i in range(10)])
    assert alerts == []  # no page, and over 3 days 3 errors are no ticket either
    fast = eng._by_service["checkout"][0].readings(T0 + (n + 1) * W)[0]
    assert fast["long"]["burn"] > 14.4 and fast["short"]["burn"] > 14.4
    assert fast["held"] and not fast["tripped"]  # 180 requests < 1000, 3 bad events < 10


def test_too_few_requests_cannot_page_even_with_many_errors():
    eng = engine()
    alerts = feed(eng, [window(i, 10, 0) for i in range(60)]
                  + [window(60 + i, 10, 5) for i in range(5)])
    # 25 errors and 50 % of the last 5 m, but only 600 requests in the hour (< 1000).
    assert alerts == []
    assert eng._by_service["checkout"][0].readings(T0 + 65 * W)[0]["held"]


def test_the_same_kind_of_burst_at_high_volume_pages():
    eng = engine()
    alerts = feed(eng, [window(i, 20_000, 0) for i in range(60)]
                  + [window(60 + i, 20_000, 3000) for i in range(10)])
    # 15 % errors: the hour passes 1.44 % (17,280 of 1.2 M) in the sixth burst window.
    assert [(a["severity"], a["status"], a["window_start"] - T0) for a in alerts] == [
        ("critical", "firing", 65 * W)]
    assert alerts[0]["slo"]["tripped"] == ["1h/5m"]


def test_a_real_outage_of_a_small_service_still_pages_through_the_6h_pair():
    eng = engine()
    healthy = [window(i, 5, 0) for i in range(360)]  # 5 requests a minute: 300 an hour
    outage = [window(360 + i, 5, 5) for i in range(30)]  # everything fails
    pages = [a for a in feed(eng, healthy + outage) if a["severity"] == "critical"]
    # The 6 h window holds 1800 requests: at 15 bad events (0.8 % > 0.6 %) it may page.
    assert pages[0]["window_start"] == T0 + 362 * W
    assert pages[0]["slo"]["tripped"] == ["6h/30m"] and pages[0]["slo"]["held"] == ["1h/5m"]


def test_the_guard_is_configurable_per_slo_and_off_for_tickets_by_default():
    blip = [window(i, 1, 0) for i in range(60)] + [window(60, 3, 3)]  # 3 of 62 in the hour
    assert feed(engine(), blip) == []
    loose = SloEngine([Slo("checkout", "availability", 99.9, min_requests=0, min_bad_events=0)])
    assert [a["severity"] for a in feed(loose, blip)] == ["critical"]
    assert not WORKBOOK_WINDOWS[2].guarded and WORKBOOK_WINDOWS[0].guarded


def test_a_pair_judges_only_once_the_history_spans_its_long_window():
    eng = engine()  # a burst right after the SLO's first window: nothing to compare with
    assert feed(eng, [window(i, R, R // 2) for i in range(59)]) == []
    assert [a["slo"]["tripped"] for a in eng.on_window(window(59, R, R // 2))] == [["1h/5m"]]


# ---- incidents -----------------------------------------------------------------------------
def burst(start, n, requests=R, errors=R // 5):
    return [window(start + i, requests, errors) for i in range(n)]


FAST = BurnWindow(PAGE, 3600, 300, 14.4, True)


def test_a_page_fires_once_heartbeats_and_resolves_after_resolve_windows():
    eng = SloEngine([Slo("checkout", "availability", 99.9, windows=(FAST,))])
    alerts = feed(eng, burst(0, 60, errors=0) + burst(60, 20) + burst(80, 10, errors=0))
    assert [(a["status"], a["update_seq"], a["window_start"] - T0) for a in alerts] == [
        ("firing", 0, 64 * W),  # 20 % errors: the hour passes 1.44 % in the fifth window
        ("firing", 1, 79 * W),  # heartbeat, 15 windows later, with fresh numbers
        ("resolved", 2, 85 * W),  # the 5 m window is clean at 84; 2 windows to resolve
    ]
    assert len({a["alert_id"] for a in alerts}) == 1
    assert {a["incident_start"] for a in alerts} == {T0 + 64 * W}
    assert alerts[-1]["slo"]["tripping_windows"] == 20


def test_no_ticket_opens_while_the_same_slo_pages_but_one_may_follow_it():
    slow = BurnWindow(TICKET, 6 * 3600, 3600, 3.0, False)
    eng = SloEngine([Slo("checkout", "availability", 99.9, windows=(FAST, slow))])
    alerts = feed(eng, burst(0, 360, errors=0) + burst(360, 20) + burst(380, 70, errors=0))
    assert [(a["slo"]["action"], a["status"], a["window_start"] - T0) for a in alerts] == [
        (PAGE, "firing", 364 * W),
        (PAGE, "firing", 379 * W),  # the ticket pair trips from 365 on, held back by the page
        (PAGE, "resolved", 385 * W),
        (TICKET, "firing", 385 * W),  # the burst still weighs 3x over 6 h and over the hour
        (TICKET, "resolved", 440 * W),  # it left the 1 h window at 439
    ]


def test_ticket_while_paging_opens_both():
    slow = BurnWindow(TICKET, 6 * 3600, 3600, 3.0, False)
    eng = SloEngine([Slo("checkout", "availability", 99.9, windows=(FAST, slow))],
                    SloConfig(ticket_while_paging=True))
    alerts = feed(eng, burst(0, 360, errors=0) + burst(360, 6))
    assert [(a["slo"]["action"], a["window_start"] - T0) for a in alerts] == [
        (PAGE, 364 * W), (TICKET, 365 * W)]


def test_silence_resolves_an_open_burn_through_on_complete():
    eng = engine()
    assert feed(eng, burst(0, 60, errors=0) + burst(60, 5))
    assert eng.on_complete(T0 + 66 * W) == []  # window 65: the 5 m window still holds it
    resolved = eng.on_complete(T0 + 80 * W)  # clean 5 m from window 69: resolved at 70
    assert [(a["status"], a["window_start"] - T0) for a in resolved] == [("resolved", 70 * W)]
    assert eng.active() == []


def test_long_silence_is_skipped_without_evaluating_every_window():
    eng = engine()
    feed(eng, burst(0, 10, errors=0))
    assert eng.on_complete(T0 + 365 * 86400) == []
    tracker = eng._by_service["checkout"][0]
    assert tracker.evaluated_until == T0 + 365 * 86400
    assert eng.on_window(window(365 * 1440, R, 0)) == []  # and the stream goes on


def test_late_duplicate_and_foreign_windows():
    eng = engine()
    feed(eng, burst(0, 3, errors=0))
    assert eng.on_window(window(1, R, 9999)) == [] and eng.late_windows == 1
    assert eng.on_window(window(5, R, 0, service="search")) == []  # no SLO for it
    before = eng.to_state()
    with pytest.raises(ValueError):
        eng.on_window({**window(5, R, 0), "errors": R + 1})
    with pytest.raises(ValueError):
        eng.on_window({**window(5, R, 0), "window_start": T0 + 5 * W + 1})
    assert eng.to_state() == before


def test_gauges_burn_rate_per_window_budget_and_objective():
    eng = engine()
    feed(eng, burst(0, 60, errors=10))  # 0.1 %: burning exactly at 1x
    g = eng.gauges()
    assert {(s, n, w) for s, n, w, _ in g.burn_rate} == {
        ("checkout", "availability", w) for w in ("5m", "30m", "1h", "6h", "3d")}
    assert all(v == pytest.approx(1.0) for *_, v in g.burn_rate)
    assert g.error_budget_remaining_ratio == [("checkout", "availability", pytest.approx(0.0))]
    assert g.objective_ratio == [("checkout", "availability", 0.999)]
    assert engine().gauges().burn_rate == []  # nothing seen yet: no series, not zeros
