"""One SLO on the stream: its history, the burn rate of each window pair, its incidents.

Every window of the service is evaluated once, in event-time order (a window without
traffic counts as zero requests). A pair **trips** when the burn rate over both its long
and its short window is at least its factor; burn rate = (bad / requests over the window)
/ (1 - objective). A guarded pair (pages, by default) whose long window holds fewer than
`min_requests` requests or `min_bad_events` bad events is **held** instead: it does not
page, and does not turn into a ticket either (the 3 d ticket pair is the low-traffic
remedy: docs/SLO.md, "Low traffic"). A pair judges only once the SLO's history spans its
long window (warm-up: 1 h, 6 h, 3 d after the SLO's first window).

Per action (page, ticket) an incident opens in the first window with a tripped pair,
re-emits every `reemit_page_windows` / `reemit_ticket_windows` while it trips, and resolves after
`resolve_windows` windows in a row with none.
"""
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from app.core.slo.alerts import build_alert
from app.core.slo.history import BurnHistory
from app.core.slo.spec import ACTIONS, PAGE, TICKET, Slo, exact


@dataclass(frozen=True)
class SloConfig:
    window_s: int = 60
    exact_horizon_s: int = 6 * 3600  # sums up to this long are exact; longer ones use buckets
    bucket_s: int = 3600
    resolve_windows: int = 2  # windows in a row without a tripped pair that resolve
    # Heartbeats of a still-tripping incident (0 = off). A page lasts minutes to an hour:
    # fresh numbers every quarter hour. A ticket lasts hours to days (its 6 h short window
    # decays slowly): every 6 hours is plenty for something nobody is woken for.
    reemit_page_windows: int = 15
    reemit_ticket_windows: int = 360
    # Like an Alertmanager inhibit rule: no ticket opens while the same SLO pages.
    ticket_while_paging: bool = False


class SloTracker:
    def __init__(self, slo: Slo, cfg: SloConfig, state: dict[str, Any] | None = None) -> None:
        self.slo, self.cfg = slo, cfg
        self._thresholds = {w.label: exact(w.factor) * slo.budget for w in slo.windows}
        self._longest_s = max((w.long_s for w in slo.windows), default=0)
        args = (cfg.window_s, cfg.bucket_s, cfg.exact_horizon_s, slo.period_s)
        state = state if state and state.get("sli") == slo.sli_key else None
        self.history = BurnHistory.from_state(state["history"], *args) if state \
            else BurnHistory(*args)
        self.since: int | None = state["since"] if state else None  # first window seen
        self.evaluated_until: int | None = state["evaluated_until"] if state else None
        self.last_data_end: int | None = state["last_data_end"] if state else None
        self.incidents: dict[str, dict] = {a: dict(i) for a, i in state["incidents"].items()} \
            if state else {}

    def to_state(self) -> dict[str, Any]:
        return {"sli": self.slo.sli_key, "since": self.since,
                "evaluated_until": self.evaluated_until,
                "last_data_end": self.last_data_end, "history": self.history.to_state(),
                "incidents": {a: dict(i) for a, i in sorted(self.incidents.items())}}

    # ---- the stream ----------------------------------------------------------------------
    def observe(self, window_start: int, requests: int, bad: float) -> list[dict]:
        """One window with traffic (windows since the last one count as empty)."""
        if self.evaluated_until is not None and window_start < self.evaluated_until:
            raise ValueError(f"window {window_start} of {self.slo.service} is before "
                             f"{self.evaluated_until}, already evaluated")
        alerts = self.advance(window_start) if self.evaluated_until is not None else []
        if self.since is None:
            self.since = window_start
        self.history.push(window_start, requests, bad)
        if requests:
            self.last_data_end = window_start + self.cfg.window_s
        return alerts + self._evaluate(window_start, requests)

    def advance(self, until_s: float) -> list[dict]:
        """Evaluate the empty windows ending at or before `until_s` (silence lets an incident
        resolve). Jumps once nothing is open and the last data is older than every pair
        window: nothing can trip from zeros, so those windows need no evaluation."""
        w = self.evaluated_until
        if w is None:
            return []
        step, alerts = self.cfg.window_s, []
        while w + step <= until_s:
            if not self.incidents and (self.last_data_end is None
                                       or w >= self.last_data_end + self._longest_s):
                w = int(until_s // step) * step
                break
            alerts += self._evaluate(w, 0)
            w += step
        done = self.evaluated_until  # moved on by _evaluate
        self.evaluated_until = w if done is None else max(w, done)
        return alerts

    # ---- burn rates ----------------------------------------------------------------------
    def span(self, span_s: int, end_s: int) -> dict[str, Any]:
        requests, bad = self.history.total(span_s, end_s)
        burn = (bad / requests) / float(self.slo.budget) if requests else None
        return {"span_s": span_s, "requests": requests, "bad": bad, "burn": burn}

    def readings(self, end_s: int) -> list[dict]:
        """Every pair's long and short window as of `end_s`, and whether it tripped or is held."""
        spans = {s: self.span(s, end_s) for s in self.slo.horizons_s()}
        out = []
        for w in self.slo.windows:
            long, short = spans[w.long_s], spans[w.short_s]
            threshold = self._thresholds[w.label]
            long_over, short_over = (bool(s["requests"]) and Fraction(s["bad"])
                                     >= threshold * Fraction(s["requests"]) for s in (long, short))
            over = long_over and short_over
            thin = long["requests"] < self.slo.min_requests or long["bad"] < self.slo.min_bad_events
            # A pair judges once the history spans its long window: "14.4x over 1 h" or
            # "1x over 3 d" from ten minutes of data would be a verdict on noise.
            judged = self.since is not None and end_s - self.since >= w.long_s
            held = over and judged and w.guarded and thin
            out.append({"pair": w.label, "action": w.action, "factor": w.factor,
                        "long": {**long, "over": long_over},
                        "short": {**short, "over": short_over}, "judged": judged,
                        "tripped": over and judged and not held, "held": held})
        return out

    def remaining(self, end_s: int) -> float | None:
        """Share of the period's error budget left (negative when overspent); None without
        traffic. Over the history there is, for a service younger than the period."""
        requests, bad = self.history.total(self.slo.period_s, end_s)
        if not requests:
            return None
        return 1.0 - (bad / requests) / float(self.slo.budget)

    # ---- incidents -----------------------------------------------------------------------
    def _evaluate(self, window_start: int, requests: int) -> list[dict]:
        end = window_start + self.cfg.window_s
        self.evaluated_until = end
        readings = self.readings(end)
        alerts = []
        for action in ACTIONS:  # page first: an open page holds a ticket back
            tripped = any(r["tripped"] for r in readings if r["action"] == action)
            emit = self._step(action, tripped, window_start)
            if emit:
                status, incident = emit
                alerts.append(build_alert(self.slo, action, status, incident, window_start,
                                          self.cfg.window_s, readings, self.remaining(end),
                                          requests))
        return alerts

    def _step(self, action: str, tripped: bool,
              window_start: int) -> tuple[str, dict] | None:
        """Advance one action's incident by a window -> (status, incident) to emit, or None."""
        inc = self.incidents.get(action)
        if inc is None:
            if not tripped or (action == TICKET and PAGE in self.incidents
                               and not self.cfg.ticket_while_paging):
                return None
            inc = self.incidents[action] = {"start": window_start, "seq": 0, "healthy": 0,
                                            "emitted_at": window_start, "windows": 1}
            return "firing", inc
        if tripped:
            inc.update(healthy=0, windows=inc["windows"] + 1)
            every = self.cfg.reemit_page_windows if action == PAGE \
                else self.cfg.reemit_ticket_windows
            every_s = every * self.cfg.window_s
            if every_s and window_start - inc["emitted_at"] >= every_s:
                inc.update(seq=inc["seq"] + 1, emitted_at=window_start)
                return "firing", inc
            return None
        inc["healthy"] += 1
        if inc["healthy"] < self.cfg.resolve_windows:
            return None
        del self.incidents[action]
        inc["seq"] += 1
        return "resolved", inc
