"""Scenario data model and loader for `lensbridge simulate` (format: docs/SCENARIOS.md).

A scenario is a JSON data file so users can write their own. Every loader error names
the file and the field path (`demo.json: incidents[2].target: ...`), because a scenario
that loads but means something else than its author thought is worse than no scenario.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from app.core.ingest.events import FRUSTRATION_TYPES

SRE_KINDS = ("latency", "errors")
CX_KINDS = ("frustration", "abandonment")
VERDICTS = ("sre_dip_user_impacting", "sre_dip_no_user_impact",
            "cx_dip_explained", "cx_dip_unexplained")
# Windows whose session multiplier is at most this share of the scenario's peak are
# off-peak: an SRE incident there is expected to touch too few users to be a CX dip.
OFF_PEAK_SHARE = 0.25
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
_REQUIRED = object()


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
    for a, b in zip(points, points[1:]):
        if window <= b.window:
            frac = (window - a.window) / (b.window - a.window)
            return getattr(a, attr) + frac * (getattr(b, attr) - getattr(a, attr))
    return getattr(points[-1], attr)


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file; raises ScenarioError naming the file and field."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ScenarioError(str(path), "", f"cannot read: {exc.strerror or exc}") from exc
    except json.JSONDecodeError as exc:
        raise ScenarioError(str(path), "", f"invalid JSON at line {exc.lineno} column "
                            f"{exc.colno}: {exc.msg}") from exc
    return parse_scenario(data, source=str(path))


def parse_scenario(data: Any, source: str = "<scenario>") -> Scenario:
    """Validate a decoded scenario object (see load_scenario)."""
    top = _Obj(source, "", data, (
        "name", "description", "window_s", "duration_windows", "warmup_windows",
        "requests_per_window", "sessions_per_window", "calls_per_view", "trace_ratio",
        "linked_requests_ratio", "noise", "services", "cohorts", "traffic_profile",
        "incidents"))
    duration = top.integer("duration_windows", lo=1)
    services = tuple(_service(o) for o in top.objects("services", min_items=1))
    _unique(top, "services", [s.name for s in services])
    names = {s.name for s in services}
    cohorts = tuple(_cohort(o, names) for o in top.objects("cohorts", default=[]))
    _unique(top, "cohorts", [c.name for c in cohorts])
    noise = top.obj("noise", ("traffic_ratio", "latency_ratio"))
    profile = _profile(top, duration)
    sc = Scenario(
        name=top.string("name"), description=top.string("description", default=""),
        window_s=top.integer("window_s", lo=1), duration_windows=duration,
        warmup_windows=top.integer("warmup_windows", default=12, lo=0),
        requests_per_window=top.number("requests_per_window", lo=0),
        sessions_per_window=top.number("sessions_per_window", default=0, lo=0),
        calls_per_view=top.integer("calls_per_view", default=3, lo=1),
        trace_ratio=top.number("trace_ratio", default=0.5, lo=0, hi=1),
        linked_requests_ratio=top.number("linked_requests_ratio", default=0.3, lo=0, hi=1),
        traffic_noise_ratio=noise.number("traffic_ratio", default=0.05, lo=0, hi=0.5),
        latency_noise_ratio=noise.number("latency_ratio", default=0.02, lo=0, hi=0.5),
        services=services, cohorts=cohorts, profile=profile, incidents=())
    incidents = tuple(_incident(o, sc) for o in top.objects("incidents", default=[]))
    _unique(top, "incidents", [i.name for i in incidents])
    sc = replace(sc, incidents=incidents)
    _check_incidents(sc, top)
    return sc


def _unique(obj: _Obj, key: str, names: list[str]) -> None:
    seen: set[str] = set()
    for i, name in enumerate(names):
        if name in seen:
            raise obj.error(f"{key}[{i}].name", f"duplicate name {name!r}")
        seen.add(name)


def _name(obj: _Obj) -> str:
    name = obj.string("name")
    if not _NAME.match(name):
        raise obj.error("name", f"{name!r} must be 1-63 letters, digits, '.', '_' or '-'")
    return name


def _lognormal(obj: _Obj, key: str, default: dict | None = None) -> LogNormal:
    o = obj.obj(key, ("median", "sigma"), required=default is None)
    d = default or {}
    return LogNormal(o.number("median", default=d.get("median", _REQUIRED), lo=0, lo_open=True),
                     o.number("sigma", default=d.get("sigma", _REQUIRED), lo=0, hi=3))


def _service(o: _Obj) -> Service:
    name = _name(o.allow("name", "description", "share", "latency_ms", "error_ratio",
                         "client_error_ratio", "routes", "error_statuses",
                         "client_error_statuses"))
    err = o.number("error_ratio", default=0.0, lo=0, hi=1)
    client = o.number("client_error_ratio", default=0.0, lo=0, hi=1)
    if err + client >= 1:
        raise o.error("client_error_ratio", "error_ratio + client_error_ratio must be < 1")
    return Service(
        name=name, share=o.number("share", lo=0, lo_open=True),
        latency_ms=_lognormal(o, "latency_ms"), error_ratio=err, client_error_ratio=client,
        routes=tuple(o.strings("routes", default=[f"/api/{name}"], min_items=1)),
        error_statuses=tuple(o.ints("error_statuses", default=[500, 502, 503, 504],
                                    lo=500, hi=599)),
        client_error_statuses=tuple(o.ints("client_error_statuses", default=[404, 400, 401],
                                           lo=400, hi=499)))


def _cohort(o: _Obj, services: set[str]) -> Cohort:
    name = _name(o.allow("name", "description", "share", "depends_on", "frustration_ratio",
                         "abandon_ratio", "tti_ms", "view_dwell_s", "views_per_session",
                         "close_after_complete_ratio", "attributes"))
    deps = []
    for i, item in enumerate(o.list("depends_on", min_items=1)):
        path = f"depends_on[{i}]"
        if isinstance(item, str):
            dep = Dependency(item, 1.0)
        else:
            d = o.child(path, item, ("service", "share"))
            dep = Dependency(d.string("service"), d.number("share", lo=0, hi=1, lo_open=True))
        if dep.service not in services:
            raise o.error(path, f"unknown service {dep.service!r} (services: "
                          f"{', '.join(sorted(services))})")
        deps.append(dep)
    attrs = o.obj("attributes", None)
    return Cohort(
        name=name, share=o.number("share", lo=0, lo_open=True), depends_on=tuple(deps),
        frustration_ratio=o.number("frustration_ratio", default=0.05, lo=0, hi=1),
        abandon_ratio=o.number("abandon_ratio", default=0.05, lo=0, hi=1),
        tti_ms=_lognormal(o, "tti_ms"),
        view_dwell_s=_lognormal(o, "view_dwell_s", {"median": 30.0, "sigma": 0.5}),
        views_per_session=o.number("views_per_session", default=3.0, lo=1, hi=50),
        close_after_complete_ratio=o.number("close_after_complete_ratio", default=0.05,
                                            lo=0, hi=1),
        attributes={k: attrs.string(k) for k in attrs.keys()})


def _profile(top: _Obj, duration: int) -> tuple[ProfilePoint, ...]:
    items = top.objects("traffic_profile", default=[{"window": 0}], min_items=1)
    points: list[ProfilePoint] = []
    for o in items:
        o.allow("window", "sessions", "requests", "description")
        p = ProfilePoint(o.integer("window", lo=0, hi=duration - 1),
                         o.number("sessions", default=1.0, lo=0),
                         o.number("requests", default=1.0, lo=0))
        if points and p.window <= points[-1].window:
            raise o.error("window", "profile points must have increasing windows")
        points.append(p)
    return tuple(points)


def _incident(o: _Obj, sc: Scenario) -> Incident:
    o.allow("name", "description", "kind", "target", "start_window", "duration_windows",
            "magnitude", "expect", "user_effect", "frustration_type", "impacted_cohorts")
    kind = o.choice("kind", SRE_KINDS + CX_KINDS)
    targets = [s.name for s in sc.services] if kind in SRE_KINDS else [c.name for c in sc.cohorts]
    target = o.choice("target", tuple(targets))
    start = o.integer("start_window", lo=0, hi=sc.duration_windows - 1)
    if kind == "latency":
        magnitude = o.number("magnitude", lo=1, lo_open=True, hi=1000)
    else:
        magnitude = o.number("magnitude", lo=0, lo_open=True, hi=1)
    frustration_type = None
    if kind == "frustration":
        frustration_type = o.choice("frustration_type", FRUSTRATION_TYPES, default="error_click")
    return Incident(
        name=o.string("name", default=f"{kind}-{target}-w{start}"), kind=kind, target=target,
        start_window=start, duration_windows=o.integer("duration_windows", lo=1),
        magnitude=magnitude, expect=o.choice("expect", VERDICTS),
        user_effect=o.number("user_effect", default=1.0, lo=0, hi=1),
        frustration_type=frustration_type,
        impacted_cohorts=tuple(o.strings("impacted_cohorts", default=[])))


def _check_incidents(sc: Scenario, top: _Obj) -> None:
    """Rules that keep each incident's `expect` true to what the generator will do."""
    for i, inc in enumerate(sc.incidents):
        at = f"incidents[{i}]"
        if inc.start_window < sc.warmup_windows:
            raise top.error(f"{at}.start_window", f"{inc.start_window} is inside the warm-up "
                            f"(warmup_windows={sc.warmup_windows}): no baseline yet")
        if inc.end_window > sc.duration_windows:
            raise top.error(f"{at}.duration_windows", "runs past the end of the scenario")
        allowed = VERDICTS[:2] if inc.kind in SRE_KINDS else ("cx_dip_unexplained",)
        if inc.expect not in allowed:
            raise top.error(f"{at}.expect", f"a {inc.kind} incident can expect "
                            f"{' or '.join(allowed)}")
        if inc.kind in SRE_KINDS:
            _check_sre_expectation(sc, inc, top, at)
        for j, other in enumerate(sc.incidents[:i]):
            clash = _clash(sc, inc, other)
            if clash:
                raise top.error(f"{at}.start_window", f"{clash} incidents[{j}] ({other.name})")


def _check_sre_expectation(sc: Scenario, inc: Incident, top: _Obj, at: str) -> None:
    deps = sc.dependents(inc.target)
    for c in inc.impacted_cohorts:
        if c not in deps:
            raise top.error(f"{at}.impacted_cohorts", f"{c!r} does not depend on "
                            f"{inc.target!r} (dependents: {', '.join(deps) or 'none'})")
    windows = range(inc.start_window, inc.end_window)
    off_peak = [w for w in windows if sc.is_off_peak(w)]
    if inc.expect == "sre_dip_user_impacting":
        if not deps or inc.user_effect == 0:
            raise top.error(f"{at}.expect", f"no cohort feels {inc.target!r} (no dependent "
                            "cohort, or user_effect 0): expect sre_dip_no_user_impact")
        if off_peak:
            raise top.error(f"{at}.expect", f"window {off_peak[0]} is off-peak: too few "
                            "users for a CX dip; expect sre_dip_no_user_impact there")
    else:
        if inc.impacted_cohorts:
            raise top.error(f"{at}.impacted_cohorts", "only for sre_dip_user_impacting")
        if deps and inc.user_effect > 0 and len(off_peak) < len(windows):
            raise top.error(f"{at}.expect", f"cohorts {', '.join(deps)} use {inc.target!r} "
                            "at peak traffic, so users feel it: expect sre_dip_user_impacting,"
                            " move it off-peak, or set user_effect 0")


def _clash(sc: Scenario, a: Incident, b: Incident) -> str:
    """Why two incidents would blur each other's verdicts ('' when they do not)."""
    near = a.start_window <= b.end_window and b.start_window <= a.end_window  # +-1 window
    if not near:
        return ""
    if a.target == b.target:
        return "overlaps (within one window)"
    sre, cx = (a, b) if a.kind in SRE_KINDS else (b, a)
    if sre.kind in SRE_KINDS and cx.kind in CX_KINDS and cx.target in sc.dependents(sre.target):
        return "a CX-only incident would be explained by the SRE incident"
    return ""


class _Obj:
    """One JSON object of the scenario, read field by field; errors carry the field path."""

    def __init__(self, source: str, path: str, data: Any, allowed: tuple | None = None):
        if not isinstance(data, dict):
            raise ScenarioError(source, path or "(top level)", "must be a JSON object")
        self.source, self.path, self.data = source, path, data
        if allowed is not None:
            self.allow(*allowed)

    def allow(self, *keys: str) -> "_Obj":
        for k in self.data:
            if k not in keys and not k.startswith("_"):  # "_comment" etc. are comments
                raise self.error(k, f"unknown field (expected one of: {', '.join(keys)})")
        return self

    def where(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def error(self, key: str, message: str) -> ScenarioError:
        return ScenarioError(self.source, self.where(key), message)

    def keys(self) -> list[str]:
        return [k for k in self.data if not k.startswith("_")]

    def _get(self, key: str, default: Any) -> Any:
        if key in self.data:
            return self.data[key]
        if default is _REQUIRED:
            raise self.error(key, "missing (required)")
        return default

    def number(self, key: str, default: Any = _REQUIRED, lo: float | None = None,
               hi: float | None = None, lo_open: bool = False) -> float:
        v = self._get(key, default)
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise self.error(key, f"must be a number, got {v!r}")
        if lo is not None and (v < lo or (lo_open and v == lo)):
            raise self.error(key, f"must be {'>' if lo_open else '>='} {lo}, got {v}")
        if hi is not None and v > hi:
            raise self.error(key, f"must be <= {hi}, got {v}")
        return float(v)

    def integer(self, key: str, default: Any = _REQUIRED, lo: int | None = None,
                hi: int | None = None) -> int:
        v = self._get(key, default)
        if isinstance(v, bool) or not isinstance(v, int):
            raise self.error(key, f"must be an integer, got {v!r}")
        return int(self.number(key, v, lo, hi))

    def string(self, key: str, default: Any = _REQUIRED) -> str:
        v = self._get(key, default)
        if not isinstance(v, str):
            raise self.error(key, f"must be a string, got {v!r}")
        return v

    def choice(self, key: str, options: tuple[str, ...], default: Any = _REQUIRED) -> str:
        v = self.string(key, default)
        if v not in options:
            raise self.error(key, f"{v!r} is not one of: {', '.join(options)}")
        return v

    def list(self, key: str, default: Any = _REQUIRED, min_items: int = 0) -> list:
        v = self._get(key, default)
        if not isinstance(v, list):
            raise self.error(key, f"must be a list, got {v!r}")
        if len(v) < min_items:
            raise self.error(key, f"needs at least {min_items} item(s)")
        return v

    def strings(self, key: str, default: Any = _REQUIRED, min_items: int = 0) -> list[str]:
        items = self.list(key, default, min_items)
        for i, v in enumerate(items):
            if not isinstance(v, str) or not v:
                raise self.error(f"{key}[{i}]", f"must be a non-empty string, got {v!r}")
        return items

    def ints(self, key: str, default: Any, lo: int, hi: int) -> list[int]:
        items = self.list(key, default, min_items=1)
        for i, v in enumerate(items):
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                raise self.error(f"{key}[{i}]", f"must be an integer {lo}-{hi}, got {v!r}")
        return items

    def child(self, key: str, data: Any, allowed: tuple | None) -> "_Obj":
        return _Obj(self.source, self.where(key), data, allowed)

    def obj(self, key: str, allowed: tuple | None, required: bool = False) -> "_Obj":
        return self.child(key, self._get(key, _REQUIRED if required else {}), allowed)

    def objects(self, key: str, default: Any = _REQUIRED, min_items: int = 0) -> list["_Obj"]:
        items = self.list(key, default, min_items)
        return [self.child(f"{key}[{i}]", item, None) for i, item in enumerate(items)]
