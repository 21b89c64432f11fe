"""The CX check of an SLO burn: did the cohorts that depend on the service move?

A burn is judged against an objective, a dip against the service's own baseline, so they
stay separate incidents (docs/SLO.md). What they share is the question users care about:
is anybody hurting? The answer comes from the correlator's open CX incidents among the
cohorts whose page views depend on the burning service, read once the correlator has
decided the burn's window.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

MIN_DEPENDENCY_SHARE = 0.05  # as the correlator's `min_dependency_share`


def dependency_shares(recent_cx: Mapping[str, Sequence[dict]], service: str) -> dict[str, float]:
    """cohort -> share of its recent page views that depended on `service` (above the floor)."""
    shares = {}
    for cohort, windows in recent_cx.items():
        views = sum(w.get("page_views", 0) for w in windows)
        calls = sum(w.get("services", {}).get(service, 0) for w in windows)
        if views and calls / views >= MIN_DEPENDENCY_SHARE:
            shares[cohort] = round(min(1.0, calls / views), 6)
    return shares


def cx_check(service: str, recent_cx: Mapping[str, Sequence[dict]],
             active: Iterable[tuple[str, str, str, str]]) -> tuple[dict, list[str]]:
    """(impact, related alert ids) for `attach_impact`: `recent_cx` is each cohort's last
    windows up to the burn's, `active` the correlator's (alert_id, kind, lens, subject) of
    incidents firing once the burn's window was decided."""
    dependents = dependency_shares(recent_cx, service)
    open_cx = {subject: alert_id for alert_id, _, lens, subject in active if lens == "cx"}
    sessions_now = {c: (ws[-1].get("sessions", 0) if ws else 0) for c, ws in recent_cx.items()}
    total = sum(sessions_now.values())
    affected: list[dict[str, Any]] = [
        {"cohort": c, "sessions": sessions_now.get(c, 0), "dependency_share": dependents[c],
         "session_share": round(sessions_now.get(c, 0) / total, 6) if total else 0.0}
        for c in sorted(dependents) if c in open_cx]
    impact = {"cohorts": affected, "dependent_cohorts": sorted(dependents),
              "sessions_affected": sum(a["sessions"] for a in affected),
              "session_share": round(min(1.0, sum(a["session_share"] for a in affected)), 6)}
    if not affected:
        impact["why"] = ("no cohort's page views depend on it" if not dependents
                         else f"dependent cohorts flat ({', '.join(sorted(dependents)[:3])})")
    return impact, sorted(open_cx[a["cohort"]] for a in affected)
