"""Scenario data model for `lensbridge simulate` (format: docs/SCENARIOS.md): the services,
cohorts, traffic profile and scripted incidents of one scenario, and what follows from
them (traffic multipliers per window, dependents, off-peak windows, expected impact).
Reading and validating a scenario file is app/simulate/scenario_load.py.
"""
from __future__ import annotations

from dataclasses import dataclass, field

SRE_KINDS = ("latency", "errors")
CX_KINDS = ("frustration", "abandonment")
VERDICTS = ("sre_dip_user_impacting", "sre_dip_no_user_impact",
            "cx_dip_explained", "cx_dip_unexplained")
# Windows whose session multiplier is at most this share of the scenario's peak are
# off-peak: an SRE incident there is expected to touch too few users to be a CX dip.
OFF_PEAK_SHARE = 0.25


class ScenarioError(ValueError):
    """A scenario that cannot be used; the message names the file and the field."""

    def __init__(self, source: str, field_path: str, message: str):
        self.source, self.field, self.reason = source, field_path, message
        where = f"{source}: {field_path}" if field_path else source
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class LogNormal:
    median: float  # the distribution's median; mu = ln(median)
    sigma: float


@dataclass(frozen=True)
class Service:
    name: str
    share: float  # relative weight of the request traffic
    latency_ms: LogNormal
    error_ratio: float  # 5xx
    client_error_ratio: float  # 4xx: not errors for the SRE lens
    routes: tuple[str, ...]
    error_statuses: tuple[int, ...]
    client_error_statuses: tuple[int, ...]


@dataclass(frozen=True)
class Dependency:
    service: str
    share: float  # probability that one page view of the cohort calls the service


@dataclass(frozen=True)
class Cohort:
    name: str
    share: float  # relative weight of new sessions
    depends_on: tuple[Dependency, ...]
    frustration_ratio: float  # probability that a page view has frustration events
    abandon_ratio: float  # probability that a page view is abandoned before complete
    tti_ms: LogNormal
    view_dwell_s: LogNormal
    views_per_session: float  # mean (geometric)
    close_after_complete_ratio: float  # `complete` then `abandon`: not an abandonment
    attributes: dict[str, str] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class ProfilePoint:
    window: int
    sessions: float
    requests: float


@dataclass(frozen=True)
class Incident:
    name: str
    kind: str
    target: str
    start_window: int
    duration_windows: int
    magnitude: float
    expect: str
    user_effect: float = 1.0
    frustration_type: str | None = None
    impacted_cohorts: tuple[str, ...] = ()

    @property
    def end_window(self) -> int:
        """First window after the incident (exclusive end)."""
        return self.start_window + self.duration_windows

    def active(self, window: int) -> bool:
        return self.start_window <= window < self.end_window


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    window_s: int
    duration_windows: int
    warmup_windows: int
    requests_per_window: float
    sessions_per_window: float
    calls_per_view: int
    trace_ratio: float
    linked_requests_ratio: float
    traffic_noise_ratio: float
    latency_noise_ratio: float
    services: tuple[Service, ...]
    cohorts: tuple[Cohort, ...]
    profile: tuple[ProfilePoint, ...]
    incidents: tuple[Incident, ...]

    def sessions_multiplier(self, window: int) -> float:
        return _interpolate(self.profile, window, "sessions")

    def requests_multiplier(self, window: int) -> float:
        return _interpolate(self.profile, window, "requests")

    def service(self, name: str) -> Service:
        return next(s for s in self.services if s.name == name)

    def dependents(self, service: str) -> tuple[str, ...]:
        """Cohorts whose page views call `service`."""
        return tuple(c.name for c in self.cohorts
                     if any(d.service == service for d in c.depends_on))

    def is_off_peak(self, window: int) -> bool:
        peak = max(p.sessions for p in self.profile)  # linear pieces peak at a point
        return self.sessions_multiplier(window) <= OFF_PEAK_SHARE * peak

    def impacted_cohorts(self, inc: Incident) -> tuple[str, ...]:
        """Cohorts expected to dip with an SRE incident (explicit list, else dependents)."""
        if inc.expect != "sre_dip_user_impacting":
            return ()
        return inc.impacted_cohorts or self.dependents(inc.target)

    def no_impact_reason(self, inc: Incident) -> str:
        if not self.dependents(inc.target):
            return "no_dependent_cohort"
        return "no_user_effect" if inc.user_effect == 0 else "off_peak"


def _interpolate(points: tuple[ProfilePoint, ...], window: int, attr: str) -> float:
    """Piecewise-linear between profile points, flat before the first and after the last."""
    if window <= points[0].window:
        return getattr(points[0], attr)
    for a, b in zip(points, points[1:], strict=False):
        if window <= b.window:
            frac = (window - a.window) / (b.window - a.window)
            return getattr(a, attr) + frac * (getattr(b, attr) - getattr(a, attr))
    return getattr(points[-1], attr)
