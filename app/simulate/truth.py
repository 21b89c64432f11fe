"""Ground truth for generated data: exact per-window numbers and the expected verdicts.

Computed from the events as written (timestamps already rounded), never from the
generator's intentions, so a test comparing the lenses with truth.json compares like
with like. Quantiles are exact: linear interpolation between order statistics, the
same as numpy.percentile's default ("linear"); no numpy at runtime.
"""
from __future__ import annotations

import math
from collections import defaultdict
from typing import Iterable

from app.core.ingest.events import FRUSTRATION_TYPES
from app.simulate.scenario import Incident, Scenario

SLICE_S = 10  # availability slice (LENSBRIDGE_AVAILABILITY_SLICE_SECONDS default)
AVAILABILITY_ERROR_RATIO = 0.05  # a slice is up when its error ratio is at most this
_FRUSTRATION = frozenset(FRUSTRATION_TYPES)


def quantile(sorted_values: list[float], q: float) -> float | None:
    """Exact q-quantile (0..1) of already sorted values, numpy's "linear" method."""
    if not sorted_values:
        return None
    h = (len(sorted_values) - 1) * q
    lo = math.floor(h)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (h - lo) * (sorted_values[hi] - sorted_values[lo])


def _window(ts: float, window_s: int) -> int:
    return int(ts // window_s) * window_s


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def sre_truth(requests: Iterable[dict], window_s: int, slice_s: int = SLICE_S,
              availability_error_ratio: float = AVAILABILITY_ERROR_RATIO) -> list[dict]:
    """One row per (window, service) with traffic: counts, exact quantiles, availability."""
    latencies: dict[tuple[int, str], list[float]] = defaultdict(list)
    slices: dict[tuple[int, str], dict[int, list[int]]] = defaultdict(dict)
    for e in requests:
        w = _window(e["ts"], window_s)
        key = (w, e["service"])
        latencies[key].append(e["latency_ms"])
        # Slices are aligned to the window start (which is aligned to the epoch).
        s = w + int((e["ts"] - w) // slice_s) * slice_s
        counts = slices[key].setdefault(s, [0, 0])
        counts[0] += 1
        counts[1] += e["status"] >= 500  # 4xx are the client's problem, not errors
    rows = []
    for (w, service), values in sorted(latencies.items()):
        values.sort()
        per_slice = sorted(slices[(w, service)].items())
        errors = sum(c[1] for _, c in per_slice)
        up = sum(1 for _, (n, err) in per_slice if err <= availability_error_ratio * n)
        rows.append({
            "window_start": w, "window_end": w + window_s, "service": service,
            "requests": len(values), "errors": errors, "error_ratio": errors / len(values),
            "latency_p50_ms": quantile(values, 0.50), "latency_p95_ms": quantile(values, 0.95),
            "latency_p99_ms": quantile(values, 0.99),
            "availability": up / len(per_slice),
            "slices": [[s, n, err] for s, (n, err) in per_slice]})
    return rows


def cx_truth(rum: Iterable[dict], window_s: int) -> list[dict]:
    """One row per (window, cohort) with events. `rum` must be sorted by ts: an `abandon`
    counts only when its view had no `complete` before it."""
    acc: dict[tuple[int, str], dict] = {}
    completed: set[str] = set()
    for e in rum:
        key = (_window(e["ts"], window_s), e["cohort"])
        a = acc.get(key)
        if a is None:
            a = acc[key] = {"sessions": set(), "frustrated": set(), "page_views": 0,
                            "events": dict.fromkeys(FRUSTRATION_TYPES, 0), "abandons": 0,
                            "completes": 0, "tti": [], "vitals": defaultdict(list),
                            "services": defaultdict(int)}
        kind = e["type"]
        a["sessions"].add(e["session_id"])
        if kind == "page_view":
            a["page_views"] += 1
            for s in e.get("services", ()):
                a["services"][s] += 1
        elif kind in _FRUSTRATION:
            a["frustrated"].add(e["session_id"])
            a["events"][kind] += 1
        elif kind == "complete":
            a["completes"] += 1
            if e.get("view_id") is not None:
                completed.add(e["view_id"])
        elif kind == "abandon":
            a["abandons"] += e.get("view_id") is None or e["view_id"] not in completed
        elif kind == "interactive":
            a["tti"].append(e["tti_ms"])
        elif kind == "web_vital":
            a["vitals"][e["name"]].append(e["value"])
    return [_cx_row(w, cohort, a, window_s) for (w, cohort), a in sorted(acc.items())]


def _cx_row(w: int, cohort: str, a: dict, window_s: int) -> dict:
    tti = sorted(a["tti"])
    return {
        "window_start": w, "window_end": w + window_s, "cohort": cohort,
        "sessions": len(a["sessions"]), "page_views": a["page_views"],
        "frustrated_sessions": len(a["frustrated"]),
        "frustration_ratio": _ratio(len(a["frustrated"]), len(a["sessions"])),
        "frustration_events": a["events"], "abandons": a["abandons"],
        "completes": a["completes"],
        "abandonment_ratio": _ratio(a["abandons"], a["page_views"]),
        "tti_samples": len(tti), "tti_p50_ms": quantile(tti, 0.50),
        "tti_p75_ms": quantile(tti, 0.75), "tti_p95_ms": quantile(tti, 0.95),
        "web_vitals_p75": {k: quantile(sorted(v), 0.75) for k, v in sorted(a["vitals"].items())},
        "services": dict(sorted(a["services"].items()))}


# ---- expected verdicts ------------------------------------------------------------------
_SRE_METRICS = {"latency": ["latency_p95_ms", "latency_p99_ms"],
                "errors": ["error_ratio", "availability"]}
_CX_METRICS = {"latency": ["tti_p75_ms", "frustration_ratio", "abandonment_ratio"],
               "errors": ["frustration_ratio", "abandonment_ratio"],
               "frustration": ["frustration_ratio"], "abandonment": ["abandonment_ratio"]}


def expected_verdicts(sc: Scenario, start_s: int, seed: int) -> dict:
    """expected.json: each incident, the alerts it should raise, and when (epoch seconds).

    `start_s` must already be aligned (generate.aligned_start). `end_window` and
    `incident_end` are exclusive.
    """
    incidents, flat = [], []
    for inc in sc.incidents:
        span = {"start_window": inc.start_window,
                "end_window": inc.end_window,
                "incident_start": start_s + inc.start_window * sc.window_s,
                "incident_end": start_s + inc.end_window * sc.window_s}
        verdicts = _verdicts(sc, inc)
        windows = range(inc.start_window, inc.end_window)
        incidents.append({
            "name": inc.name, **span, "kind": inc.kind, "target": inc.target,
            "magnitude": inc.magnitude, "expect": inc.expect,
            "off_peak": all(sc.is_off_peak(w) for w in windows),
            "sessions_multiplier": min(sc.sessions_multiplier(w) for w in windows),
            "requests_multiplier": min(sc.requests_multiplier(w) for w in windows),
            "verdicts": verdicts})
        flat.extend({**v, "incident": inc.name, **span} for v in verdicts)
    return {"schema_version": 1, "scenario": sc.name, "seed": seed, "start_s": start_s,
            "end_s": start_s + sc.duration_windows * sc.window_s, "window_s": sc.window_s,
            "duration_windows": sc.duration_windows, "warmup_windows": sc.warmup_windows,
            "incidents": incidents, "verdicts": flat}


def _verdicts(sc: Scenario, inc: Incident) -> list[dict]:
    if inc.expect == "cx_dip_unexplained":
        return [{"kind": inc.expect, "lens": "cx", "subject": inc.target,
                 "metrics": _CX_METRICS[inc.kind]}]
    sre = {"kind": inc.expect, "lens": "sre", "subject": inc.target,
           "metrics": _SRE_METRICS[inc.kind]}
    if inc.expect == "sre_dip_no_user_impact":
        return [{**sre, "reason": sc.no_impact_reason(inc)}]
    cohorts = list(sc.impacted_cohorts(inc))
    return [{**sre, "cohorts": cohorts}] + [
        {"kind": "cx_dip_explained", "lens": "cx", "subject": c, "top_candidate": inc.target,
         "metrics": _CX_METRICS[inc.kind]} for c in cohorts]
