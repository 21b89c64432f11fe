"""SLOs and error budgets on the stream: the joiner's entry point (docs/SLO.md).

    slos = load_slos(text, "slo.yaml", window_s)         # SloConfigError: file:line: reason
    engine = SloEngine(slos, SloConfig(window_s=60), state)
    alerts = engine.on_window(merged_sre_window)          # each merged SRE window, in order
    alerts += engine.on_complete(sre_complete_until_s)    # then: silent services advance too
    engine.gauges(); engine.to_state()                    # Prometheus data; durable state

Pure: no clock (time is the windows' event time), no I/O. The state is plain JSON and
byte-stable: `orjson.dumps(SloEngine(slos, cfg, s).to_state(), option=OPT_SORT_KEYS)` is
the same bytes as for `s`, so a restarted joiner resumes burns and incidents under the
same alert ids.
"""
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from app.core.slo.alerts import KIND, attach_impact, slo_alert_id
from app.core.slo.loader import load_slos
from app.core.slo.sli import bad_events
from app.core.slo.spec import WORKBOOK_WINDOWS, BurnWindow, Slo, SloConfigError, duration_text
from app.core.slo.track import SloConfig, SloTracker

__all__ = ["KIND", "WORKBOOK_WINDOWS", "BurnWindow", "Slo", "SloConfig", "SloConfigError",
           "SloEngine", "SloGauges", "attach_impact", "load_slos", "slo_alert_id"]

STATE_VERSION = 1


@dataclass(frozen=True)
class SloGauges:
    """Data of the SLO gauges as of each SLO's last evaluated window. Series whose value is
    unknown (no traffic in the window or the period) are left out rather than set to 0."""

    burn_rate: list[tuple[str, str, str, float]]  # (service, slo, window "1h", burn rate)
    error_budget_remaining_ratio: list[tuple[str, str, float]]  # (service, slo, ratio)
    objective_ratio: list[tuple[str, str, float]]  # (service, slo, 0.999)


class SloEngine:
    def __init__(self, slos: Iterable[Slo], cfg: SloConfig | None = None,
                 state: Mapping[str, Any] | None = None) -> None:
        self.cfg = cfg = cfg or SloConfig()
        self.slos = sorted(slos, key=lambda s: (s.service, s.name))
        _check(self.slos, cfg)
        if state:
            _check_state(state, cfg)
        saved = (state or {}).get("slos", {})
        self.late_windows: int = (state or {}).get("late_windows", 0)
        # SLOs no longer in the file are dropped with their state; new ones start empty.
        self._trackers = [SloTracker(s, cfg, saved.get(s.service, {}).get(s.name))
                          for s in self.slos]
        self._by_service: dict[str, list[SloTracker]] = {}
        for tracker in self._trackers:
            self._by_service.setdefault(tracker.slo.service, []).append(tracker)

    @classmethod
    def from_state(cls, state: Mapping[str, Any], slos: Iterable[Slo],
                   cfg: SloConfig | None = None) -> "SloEngine":
        return cls(slos, cfg, state)

    def to_state(self) -> dict[str, Any]:
        slos: dict[str, dict] = {}
        for t in self._trackers:
            slos.setdefault(t.slo.service, {})[t.slo.name] = t.to_state()
        return {"version": STATE_VERSION, "window_s": self.cfg.window_s,
                "bucket_s": self.cfg.bucket_s, "exact_horizon_s": self.cfg.exact_horizon_s,
                "late_windows": self.late_windows, "slos": slos}

    # ---- input ---------------------------------------------------------------------------
    def on_window(self, merged: Mapping[str, Any]) -> list[dict]:
        """One merged SRE window; windows of one service must come in event-time order.
        Raises ValueError for a malformed window; counts (`late_windows`) and drops one at
        or before a window already evaluated. Services without SLOs are ignored."""
        service, window_start, requests = _check_window(merged, self.cfg.window_s)
        trackers = self._by_service.get(service, [])
        fresh = [t for t in trackers
                 if t.evaluated_until is None or window_start >= t.evaluated_until]
        self.late_windows += len(fresh) < len(trackers)
        # Every SLO's bad events first: a malformed digest then changes nothing at all.
        bad = [bad_events(merged, t.slo) for t in fresh]
        alerts: list[dict] = []
        for tracker, n in zip(fresh, bad, strict=True):
            alerts += tracker.observe(window_start, requests, n)
        return alerts

    def on_complete(self, until_s: float) -> list[dict]:
        """The SRE lens is complete up to `until_s`: every service evaluates its empty
        windows up to there (an open burn can resolve while a service is silent)."""
        alerts: list[dict] = []
        for tracker in self._trackers:
            alerts += tracker.advance(until_s)
        return alerts

    # ---- output besides alerts -----------------------------------------------------------
    def gauges(self) -> SloGauges:
        burn, remaining, objective = [], [], []
        for t in self._trackers:
            service, name = t.slo.service, t.slo.name
            objective.append((service, name, t.slo.objective_ratio))
            end = t.evaluated_until
            if end is None:
                continue
            for span_s in t.slo.horizons_s():
                rate = t.span(span_s, end)["burn"]
                if rate is not None:
                    burn.append((service, name, duration_text(span_s), rate))
            left = t.remaining(end)
            if left is not None:
                remaining.append((service, name, left))
        return SloGauges(burn, remaining, objective)

    def active(self) -> list[tuple[str, str, str, str]]:
        """(alert_id, service, slo, action) of every open burn incident, by id."""
        return sorted((slo_alert_id(t.slo.service, t.slo.name, action, inc["start"]),
                       t.slo.service, t.slo.name, action)
                      for t in self._trackers for action, inc in t.incidents.items())


def _check(slos: list[Slo], cfg: SloConfig) -> None:
    problems = [p for s in slos for p in s.problems(cfg.window_s)]
    if cfg.window_s <= 0 or cfg.bucket_s % cfg.window_s:
        problems.append(f"history bucket of {cfg.bucket_s} s is not a whole number of "
                        f"{cfg.window_s} s windows")
    keys = [(s.service, s.name) for s in slos]
    problems += [f"duplicate SLO {n!r} for service {s!r}" for s, n in sorted(set(keys))
                 if keys.count((s, n)) > 1]
    if problems:
        raise SloConfigError(problems)


def _check_state(state: Mapping[str, Any], cfg: SloConfig) -> None:
    if state.get("version") != STATE_VERSION:
        raise ValueError(f"unknown SLO state version {state.get('version')!r}")
    shape = (state.get("window_s"), state.get("bucket_s"), state.get("exact_horizon_s"))
    if shape != (cfg.window_s, cfg.bucket_s, cfg.exact_horizon_s):
        raise ValueError(f"SLO state was built with (window_s, bucket_s, exact_horizon_s) = "
                         f"{shape}, not {(cfg.window_s, cfg.bucket_s, cfg.exact_horizon_s)}")


def _check_window(merged: Mapping[str, Any], window_s: int) -> tuple[str, int, int]:
    if merged.get("lens") != "sre":
        raise ValueError(f"not an SRE window: lens {merged.get('lens')!r}")
    service, start = merged.get("subject"), merged.get("window_start")
    if not isinstance(service, str) or not service:
        raise ValueError("merged window without a subject")
    if not isinstance(start, int) or start % window_s != 0 or merged.get("window_end") != start + window_s:
        raise ValueError(f"window {start}..{merged.get('window_end')} is not an epoch-aligned "
                         f"{window_s} s window")
    requests, errors = merged.get("requests"), merged.get("errors")
    if not (isinstance(requests, int) and isinstance(errors, int) and 0 <= errors <= requests):
        raise ValueError(f"window {start} of {service}: requests {requests!r}, errors {errors!r}")
    return service, start, requests
