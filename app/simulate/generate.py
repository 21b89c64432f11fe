"""Event generation: (scenario, start time, seed) -> request and RUM events, sorted by ts.

Pure: the start time is a parameter and all randomness comes from `random.Random`
seeded from `seed`, so the same arguments always give the same events. RUM is drawn
first because requests borrow session ids from the page views of their window.

Incidents act on whole windows. An SRE incident degrades the target service's requests
and, through the page views whose `services` include it, the users of those views: the
causal path that makes `sre_dip_user_impacting` and `cx_dip_explained` appear in data.
"""
from __future__ import annotations

import heapq
import itertools
import math
import random
from collections import defaultdict
from dataclasses import dataclass
from typing import Iterator

from app.core.ingest.events import FRUSTRATION_TYPES
from app.simulate.scenario import CX_KINDS, SRE_KINDS, Cohort, Incident, Scenario

# How often each frustration signal shows up when nothing is broken.
_BASE_FRUSTRATION_WEIGHTS = (0.3, 0.35, 0.1, 0.25)  # same order as FRUSTRATION_TYPES
_REPEAT_FRUSTRATION_P = 0.35  # a frustrated user often does it again (repeated rage clicks)
_FAILED_VIEW_FRUSTRATION_P = 0.8  # a view whose backend call failed mostly shows an error click
_FAILED_VIEW_ABANDON_P = 0.5
_SUCCESS_STATUSES = (200,) * 18 + (204, 304)  # 3xx are not errors either
_LEAD_IN_S = 600  # longer than almost every session


def aligned_start(scenario: Scenario, start_s: float) -> int:
    """Windows are aligned to the epoch: the scenario starts at the window holding start_s."""
    return int(start_s // scenario.window_s) * scenario.window_s


def generate(scenario: Scenario, start_s: int, seed: int) -> Iterator[tuple[str, dict]]:
    """Yield ("requests" | "rum", event) for the whole scenario, sorted by ts."""
    return merge_sorted(*generate_lists(scenario, start_s, seed))


def merge_sorted(requests: list[dict], rum: list[dict]) -> Iterator[tuple[str, dict]]:
    """Both sorted lists as one ("requests" | "rum", event) stream sorted by ts."""
    # heapq.merge keeps input order on ties, so the stream is deterministic too.
    return heapq.merge((("requests", e) for e in requests), (("rum", e) for e in rum),
                       key=lambda pair: pair[1]["ts"])


def generate_lists(scenario: Scenario, start_s: int, seed: int) -> tuple[list[dict], list[dict]]:
    """The request events and the RUM events, each sorted by ts."""
    start = aligned_start(scenario, start_s)
    rum_gen = _RumGenerator(scenario, start, random.Random(f"{seed}:rum"))
    rum = rum_gen.run()
    requests = _requests(scenario, start, random.Random(f"{seed}:requests"), rum_gen.links)
    return requests, rum


def _count(rng: random.Random, mean: float, noise_ratio: float) -> int:
    """A Poisson-like count around mean, with per-window traffic noise on top."""
    mean *= max(0.0, 1.0 + rng.gauss(0.0, noise_ratio))
    if mean < 30:  # exact Poisson (Knuth) where the normal approximation is poor
        limit, k, p = math.exp(-mean), 0, rng.random()
        while p > limit:
            k += 1
            p *= rng.random()
        return k
    return max(0, round(rng.gauss(mean, math.sqrt(mean))))


def _ts(event: dict) -> float:
    return event["ts"]


# ---- requests -------------------------------------------------------------------------
def _requests(sc: Scenario, start: int, rng: random.Random, links: dict) -> list[dict]:
    out: list[dict] = []
    total_share = sum(s.share for s in sc.services)
    for w in range(sc.duration_windows):
        incidents = [i for i in sc.incidents if i.active(w) and i.kind in SRE_KINDS]
        for svc in sc.services:
            mean = sc.requests_per_window * sc.requests_multiplier(w) * svc.share / total_share
            n = _count(rng, mean, sc.traffic_noise_ratio)
            factor = math.exp(rng.gauss(0.0, sc.latency_noise_ratio))
            err = svc.error_ratio
            for inc in incidents:
                if inc.target == svc.name and inc.kind == "latency":
                    factor *= inc.magnitude
                elif inc.target == svc.name:
                    err = inc.magnitude
            window = (start + w * sc.window_s, start + (w + 1) * sc.window_s)
            _service_requests(out, sc, svc, window, n, factor, err, rng,
                              links.get((w, svc.name), ()))
    out.sort(key=_ts)
    return out


def _service_requests(out: list, sc: Scenario, svc, window: tuple[int, int], n: int,
                      factor: float, err: float, rng: random.Random, sessions) -> None:
    """Append n requests of one service in one window (the hot loop: locals bound)."""
    rnd, choice, lognorm, bits = rng.random, rng.choice, rng.lognormvariate, rng.getrandbits
    w0, w_end = window
    last_ts = w_end - 0.001  # rounding to ms must not push an event into the next window
    mu, sigma = math.log(svc.latency_ms.median), svc.latency_ms.sigma
    client = min(svc.client_error_ratio, 1.0 - err)
    name, routes = svc.name, svc.routes
    trace_p, link_p = sc.trace_ratio, sc.linked_requests_ratio if sessions else 0.0
    for _ in range(n):
        r = rnd()
        if r < err:
            status = choice(svc.error_statuses)
        elif r < err + client:
            status = choice(svc.client_error_statuses)
        else:
            status = choice(_SUCCESS_STATUSES)
        event = {"ts": min(round(w0 + rnd() * sc.window_s, 3), last_ts), "service": name,
                 "latency_ms": round(lognorm(mu, sigma) * factor, 2), "status": status,
                 "route": choice(routes), "method": "POST" if rnd() < 0.2 else "GET"}
        if rnd() < trace_p:
            event["trace_id"] = f"{bits(128):032x}"
        if rnd() < link_p:
            event["session_id"] = choice(sessions)
        out.append(event)


# ---- RUM --------------------------------------------------------------------------------
@dataclass
class _Effect:
    """What incidents do to one page view."""

    frustration_p: float
    abandon_p: float
    tti_extra_ms: float = 0.0
    frustration_type: str | None = None  # None: the base mix of frustration signals
    impaired: bool = False  # hit by a backend incident: trouble happens while loading
    broken: bool = False  # hit by a frontend incident: trouble right after interactive


class _RumGenerator:
    def __init__(self, sc: Scenario, start: int, rng: random.Random):
        self.sc, self.start, self.rng = sc, start, rng
        self.end = start + sc.duration_windows * sc.window_s
        self.out: list[dict] = []
        self.links: dict[tuple[int, str], list[str]] = defaultdict(list)
        self.active = [[i for i in sc.incidents if i.active(w)]
                       for w in range(sc.duration_windows)]

    def run(self) -> list[dict]:
        sc, rng = self.sc, self.rng
        if not sc.cohorts:
            return []
        cum = list(itertools.accumulate(c.share for c in sc.cohorts))
        # Sessions start before the scenario does, so its first windows already hold a
        # steady mix of sessions in progress (events before the start are dropped).
        lead_in = -math.ceil(_LEAD_IN_S / sc.window_s)
        for w in range(lead_in, sc.duration_windows):
            n = _count(rng, sc.sessions_per_window * sc.sessions_multiplier(max(w, 0)),
                       sc.traffic_noise_ratio)
            for _ in range(n):
                cohort = rng.choices(sc.cohorts, cum_weights=cum)[0]
                self._session(cohort, self.start + (w + rng.random()) * sc.window_s)
        self.out.sort(key=_ts)
        return self.out

    def _emit(self, event: dict) -> None:
        event["ts"] = round(event["ts"], 3)
        if self.start <= event["ts"] < self.end:  # cut to the scenario's span
            self.out.append(event)

    def _session(self, cohort: Cohort, t: float) -> None:
        rng = self.rng
        sid, user = f"{rng.getrandbits(64):016x}", f"u{rng.getrandbits(32):08x}"
        more_p = 1.0 - 1.0 / cohort.views_per_session  # geometric number of views
        k = 0
        while t < self.end:
            end, over = self._view(cohort, sid, user, k, t)
            if over or rng.random() >= more_p:
                return
            t, k = end + rng.uniform(1.0, 8.0), k + 1

    def _effect(self, cohort: Cohort, services: list[str], w: int) -> _Effect:
        eff = _Effect(cohort.frustration_ratio, cohort.abandon_ratio)
        for inc in self.active[w]:
            if inc.kind in CX_KINDS:  # a frontend problem: only its cohort, no backend trace
                if inc.target == cohort.name and inc.kind == "frustration":
                    eff.frustration_p = max(eff.frustration_p, inc.magnitude)
                    eff.frustration_type, eff.broken = inc.frustration_type, True
                elif inc.target == cohort.name:
                    eff.abandon_p, eff.broken = max(eff.abandon_p, inc.magnitude), True
            elif inc.target in services:
                self._backend_effect(eff, inc)
        return eff

    def _backend_effect(self, eff: _Effect, inc: Incident) -> None:
        calls, u = self.sc.calls_per_view, inc.user_effect
        if inc.kind == "latency":
            slow = inc.magnitude - 1.0
            # The view waits for its calls in sequence, so TTI grows with every slow call.
            eff.tti_extra_ms += slow * self.sc.service(inc.target).latency_ms.median * calls * u
            eff.frustration_p = min(0.95, eff.frustration_p + min(0.6, 0.12 * slow) * u)
            eff.abandon_p = min(0.95, eff.abandon_p + min(0.4, 0.08 * slow) * u)
            eff.frustration_type = eff.frustration_type or "rage_click"
            eff.impaired = u > 0
        elif self.rng.random() < (1.0 - (1.0 - inc.magnitude) ** calls) * u:
            eff.frustration_p = max(eff.frustration_p, _FAILED_VIEW_FRUSTRATION_P)
            eff.abandon_p = max(eff.abandon_p, _FAILED_VIEW_ABANDON_P)
            eff.frustration_type, eff.impaired = "error_click", True

    def _view(self, cohort: Cohort, sid: str, user: str, k: int, t0: float) -> tuple[float, bool]:
        """Emit one page view from t0; return (its end time, whether the session is over)."""
        rng = self.rng
        w = int((t0 - self.start) // self.sc.window_s)
        services = [d.service for d in cohort.depends_on if rng.random() < d.share]
        if w >= 0:
            for s in services:
                self.links[(w, s)].append(sid)
        eff = self._effect(cohort, services, w) if w >= 0 else _Effect(
            cohort.frustration_ratio, cohort.abandon_ratio)
        base = {"session_id": sid, "cohort": cohort.name, "view_id": f"{sid}-{k}"}
        page_view = {**base, "ts": t0, "type": "page_view",
                     "page": f"/{services[-1] if services else 'home'}/{k}",
                     "services": services, "user_id": user}
        if cohort.attributes:
            page_view["attributes"] = dict(cohort.attributes)
        self._emit(page_view)
        end, abandon = self._view_outcome(cohort, base, eff, t0)
        if not abandon and rng.random() < cohort.close_after_complete_ratio:
            return end, self._abandon_after_complete(base, end)
        return end, abandon

    def _view_outcome(self, cohort: Cohort, base: dict, eff: _Effect,
                      t0: float) -> tuple[float, bool]:
        """Everything after the page_view; returns (the view's end, whether abandoned)."""
        rng, emit = self.rng, self._emit
        tti_ms = rng.lognormvariate(math.log(cohort.tti_ms.median), cohort.tti_ms.sigma)
        tti_ms += eff.tti_extra_ms
        abandon = rng.random() < eff.abandon_p
        loading_abandon = abandon and (eff.impaired or (not eff.broken and rng.random() < 0.5))
        if loading_abandon:  # page hidden before it was usable (load abandonment)
            end = t0 + rng.uniform(0.2, 0.95) * tti_ms / 1000.0
        else:
            t_int = t0 + tti_ms / 1000.0
            dwell = rng.lognormvariate(math.log(cohort.view_dwell_s.median),
                                       cohort.view_dwell_s.sigma)
            if abandon and eff.broken:  # the page does not work: users give up quickly
                dwell = rng.uniform(1.0, 5.0)
            elif abandon:
                dwell *= rng.uniform(0.2, 1.0)
            end = t_int + dwell
            emit({**base, "ts": t_int, "type": "interactive", "tti_ms": round(tti_ms, 1)})
            self._late_vitals(base, max(t_int, end - 0.01))
        lcp_ms = tti_ms * rng.uniform(0.45, 0.85)
        if t0 + lcp_ms / 1000.0 < end:
            emit({**base, "ts": t0 + lcp_ms / 1000.0, "type": "web_vital", "name": "LCP",
                  "value": round(lcp_ms, 1)})
        if rng.random() < eff.frustration_p:
            t_int = t0 + tti_ms / 1000.0
            if eff.impaired:  # clicks on a page that is still loading
                span = (t0, min(end, t_int))
            elif eff.broken:  # a broken page shows it as soon as it is used
                span = (min(end, t_int), min(end, t_int + 3.0))
            else:
                span = (t0, end)
            self._frustration(base, eff, span)
        emit({**base, "ts": end, "type": "abandon" if abandon else "complete"})
        return end, abandon

    def _late_vitals(self, base: dict, t: float) -> None:
        """INP and CLS are final only when the page is hidden: report them at the view end."""
        rng = self.rng
        self._emit({**base, "ts": t, "type": "web_vital", "name": "INP",
                    "value": round(rng.lognormvariate(math.log(150.0), 0.6), 1)})
        self._emit({**base, "ts": t, "type": "web_vital", "name": "CLS",
                    "value": round(rng.lognormvariate(math.log(0.05), 0.8), 4)})

    def _frustration(self, base: dict, eff: _Effect, span: tuple[float, float]) -> None:
        rng = self.rng
        kind = eff.frustration_type or rng.choices(FRUSTRATION_TYPES,
                                                   _BASE_FRUSTRATION_WEIGHTS)[0]
        n = 1
        while n < 4 and rng.random() < _REPEAT_FRUSTRATION_P:
            n += 1
        lo, hi = span
        for t in sorted(lo + (hi - lo) * rng.uniform(0.05, 0.95) for _ in range(n)):
            self._emit({**base, "ts": t, "type": kind})

    def _abandon_after_complete(self, base: dict, end: float) -> bool:
        """The tab closed after the view completed: `abandon` that is not an abandonment.

        Kept in the window of the `complete`, so per-window counts never depend on view
        state carried across windows. Returns True: the session ends here.
        """
        done = round(end, 3)
        window_end = self.start + ((done - self.start) // self.sc.window_s + 1) * self.sc.window_s
        t = round(min(done + self.rng.uniform(0.2, 2.0), window_end - 0.001), 3)
        if t > done:
            self._emit({**base, "ts": t, "type": "abandon"})
        return True
