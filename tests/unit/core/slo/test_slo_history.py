"""The bounded SLO history: exact sums within the fine tier, hourly buckets beyond, bounded
state, budget accounting over a 30-day period against a brute-force count."""
import math
import random
from itertools import accumulate

import orjson
import pytest

from app.core.slo.engine import SloEngine
from app.core.slo.history import BurnHistory
from app.core.slo.spec import PAGE, BurnWindow, Slo

W = 60
T0 = 1767225600
DAY = 86400


def history(exact_s=6 * 3600, period_s=30 * DAY):
    return BurnHistory(W, 3600, exact_s, period_s)


def diurnal(n, seed=3):
    """Per-window (requests, bad): a daily cycle, noise, and rare 20 % error spikes."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        requests = int(2000 * (1.2 + math.sin(2 * math.pi * i / 1440))) + rng.randint(0, 100)
        spike = requests // 5 if rng.random() < 0.002 else 0
        out.append((requests, rng.randint(0, requests // 500) + spike))
    return out


def brute(data, span_windows):
    tail = data[-span_windows:]
    return sum(r for r, _ in tail), sum(b for _, b in tail)


def test_sums_within_the_fine_tier_are_exact():
    h, data = history(), diurnal(2 * 1440)
    for i, (r, b) in enumerate(data):
        h.push(T0 + i * W, r, b)
        if i % 37 == 0:
            end = T0 + (i + 1) * W
            for span_windows in (5, 30, 60, 360):
                assert h.total(span_windows * W, end) == brute(data[: i + 1], span_windows)


def test_longer_sums_are_within_one_edge_bucket_and_exact_on_hour_boundaries():
    h, data = history(), diurnal(35 * 1440)
    cum_r, cum_b = [0, *accumulate(r for r, _ in data)], [0, *accumulate(b for _, b in data)]
    worst = {3: 0.0, 30: 0.0}
    for i, (r, b) in enumerate(data):
        h.push(T0 + i * W, r, b)
        if i < 31 * 1440 or i % 7:
            continue
        end = T0 + (i + 1) * W
        for days in worst:
            lo = i + 1 - days * 1440
            r_ex, b_ex = cum_r[i + 1] - cum_r[lo], cum_b[i + 1] - cum_b[lo]
            got_r, got_b = h.total(days * DAY, end)
            # Only the bucket cut by the far edge is estimated, from its own counts.
            edge = max(data[i + 1 - days * 1440 - k][0] for k in range(60)) * 60
            assert abs(got_r - r_ex) <= edge
            worst[days] = max(worst[days], abs(got_b / got_r - b_ex / r_ex) / (b_ex / r_ex))
            if (end - T0) % 3600 == 0:
                assert (got_r, got_b) == (r_ex, b_ex)
    # Measured (docs/SLO.md): a 20 % error spike in the edge hour moves the 3 d error ratio
    # by up to ~6 %, the 30 d ratio by under 0.5 %.
    assert worst[3] < 0.08 and worst[30] < 0.01


def test_state_stays_bounded_over_a_period_and_beyond():
    h = history()
    for i, (r, b) in enumerate(diurnal(40 * 1440)):
        h.push(T0 + i * W, r, b + 0.125)  # latency SLOs count fractional bad events
    state = h.to_state()
    assert 360 <= len(state["fine_requests"]) <= 420  # 6 h to 7 h of windows
    assert len(state["bucket_requests"]) <= 30 * 24 + 1
    assert len(orjson.dumps(state)) < 20_000


def test_gaps_count_as_zero_and_a_gap_longer_than_the_period_forgets_everything():
    h = history(period_s=2 * DAY)
    h.push(T0, 100, 5)
    h.push(T0 + 10 * W, 100, 1)  # nine silent windows in between
    assert h.total(3600, T0 + 11 * W) == (200, 6)
    h.push(T0 + 3 * DAY, 100, 2)
    assert h.total(2 * DAY, T0 + 3 * DAY + W) == (100, 2)
    assert h.bucket_requests == [] or sum(h.bucket_requests) == 0


def test_round_trip_and_refusal_of_windows_out_of_order():
    h = history()
    for i, (r, b) in enumerate(diurnal(1000)):
        h.push(T0 + i * W, r, b)
    saved = orjson.loads(orjson.dumps(h.to_state()))
    again = BurnHistory.from_state(saved, W, 3600, 6 * 3600, 30 * DAY)
    assert orjson.dumps(again.to_state()) == orjson.dumps(h.to_state())
    with pytest.raises(ValueError):
        h.push(T0 + 10 * W, 1, 0)


def test_budget_accounting_over_a_period():
    slo = Slo("checkout", "availability", 99.9, period_s=2 * DAY,
              windows=(BurnWindow(PAGE, 3600, 300, 14.4, True),))
    eng = SloEngine([slo])
    assert eng.gauges().error_budget_remaining_ratio == []  # no traffic, no budget verdict
    spent = []
    for i in range(3 * 1440):
        errors = 5 if i < 1440 else 1  # day 1 at 5x the budget, then days at 1x
        eng.on_window({"lens": "sre", "subject": "checkout", "window_start": T0 + i * W,
                       "window_end": T0 + (i + 1) * W, "requests": 1000, "errors": errors})
        if (i + 1) % 1440 == 0:
            spent.append(eng.gauges().error_budget_remaining_ratio[0][2])
    # Day 1 alone: 5x over everything seen; days 1-2: (5 + 1) / 2 = 3x; days 2-3: 1x, the
    # first day has left the 2-day period.
    assert spent == [pytest.approx(1 - 5), pytest.approx(1 - 3), pytest.approx(0.0)]
