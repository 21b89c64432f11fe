"""Loading a scenario: JSON file -> validated `Scenario` (format: docs/SCENARIOS.md).

A scenario is a JSON data file so users can write their own. Every loader error names
the file and the field path (`demo.json: incidents[2].target: ...`), because a scenario
that loads but means something else than its author thought is worse than no scenario.
"""
from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from app.core.ingest.events import FRUSTRATION_TYPES
from app.simulate.scenario import (
    CX_KINDS,
    SRE_KINDS,
    VERDICTS,
    Cohort,
    Dependency,
    Incident,
    LogNormal,
    ProfilePoint,
    Scenario,
    ScenarioError,
    Service,
)
from app.simulate.scenario_fields import REQUIRED, JsonObject

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


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
    top = JsonObject(source, "", data, (
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


def _unique(obj: JsonObject, key: str, names: list[str]) -> None:
    seen: set[str] = set()
    for i, name in enumerate(names):
        if name in seen:
            raise obj.error(f"{key}[{i}].name", f"duplicate name {name!r}")
        seen.add(name)


def _name(obj: JsonObject) -> str:
    name = obj.string("name")
    if not _NAME.match(name):
        raise obj.error("name", f"{name!r} must be 1-63 letters, digits, '.', '_' or '-'")
    return name


def _lognormal(obj: JsonObject, key: str, default: dict | None = None) -> LogNormal:
    o = obj.obj(key, ("median", "sigma"), required=default is None)
    d = default or {}
    return LogNormal(o.number("median", default=d.get("median", REQUIRED), lo=0, lo_open=True),
                     o.number("sigma", default=d.get("sigma", REQUIRED), lo=0, hi=3))


def _service(o: JsonObject) -> Service:
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


def _cohort(o: JsonObject, services: set[str]) -> Cohort:
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


def _profile(top: JsonObject, duration: int) -> tuple[ProfilePoint, ...]:
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


def _incident(o: JsonObject, sc: Scenario) -> Incident:
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


def _check_incidents(sc: Scenario, top: JsonObject) -> None:
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


def _check_sre_expectation(sc: Scenario, inc: Incident, top: JsonObject, at: str) -> None:
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
