"""`slo_burn` alerts: ids, bodies, the pager sentence, and the CX check the joiner attaches.

One incident per (service, SLO, action): a page and a ticket are separate alerts, as in
Sloth and Pyrra, so a page resolves when the fast burn stops even if the slow one goes
on. Id = first 20 hex digits of sha1("slo_burn|<service>|<slo>|<action>|<incident_start>"):
the SLO and action are hashed besides kind, subject and start because one service has
several SLOs that may trip in the same window.

The body follows schemas/alert.schema.json (lens `sre`, subject = the service,
severity critical for a page and warning for a ticket, never changing within an
incident) plus an `slo` object with the objective, the pairs and the budget. `impact`
starts as `{"checked": false}`; the joiner fills it with `attach_impact` once the CX lens
has judged the window (docs/SLO.md, "Wiring").
"""
import hashlib
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

from app.core.slo.spec import LATENCY, SEVERITY, Slo, duration_text

KIND = "slo_burn"
METRIC = "slo_burn_rate"
SCHEMA_VERSION = 1


def slo_alert_id(service: str, slo: str, action: str, incident_start: int) -> str:
    key = f"{KIND}|{service}|{slo}|{action}|{incident_start}"
    return hashlib.sha1(key.encode()).hexdigest()[:20]


def _r(x: float | None) -> float | None:
    """Six decimals: stable bytes for deduplication (as the other alert kinds)."""
    return None if x is None else round(float(x), 6)


def evidence(slo: Slo, window_start: int, readings: list[dict]) -> list[dict]:
    """Burn rate of each pair's long and short window; tripped pairs first, worst first.
    `dip`: this window's burn rate is at or over the pair's factor; `judged`: false while
    the history is shorter than the long window; `held`: over, but below the traffic guard."""
    order = sorted(readings,
                   key=lambda r: (not r["tripped"], -(r["long"]["burn"] or 0) / r["factor"]))
    out = []
    for reading in order:
        for side in ("long", "short"):
            span = reading[side]
            burn = span["burn"] or 0.0
            out.append({"lens": "sre", "subject": slo.service, "metric": METRIC,
                        "window_start": window_start, "value": _r(burn), "baseline": 1.0,
                        "change": _r(burn - 1.0), "threshold": _r(reading["factor"]),
                        "dip": span["over"], "slo": slo.name,
                        "window": duration_text(span["span_s"]), "pair": reading["pair"],
                        "requests": round(span["requests"]), "bad_events": _r(span["bad"]),
                        "judged": reading["judged"], "held": reading["held"]})
    return out


def build_alert(slo: Slo, action: str, status: str, incident: dict, window_start: int,
                window_s: int, readings: list[dict], remaining: float | None,
                window_requests: int) -> dict[str, Any]:
    """One message of an incident (`incident`: start, seq, windows tripped so far)."""
    mine = [r for r in readings if r["action"] == action]
    alert = {
        "schema_version": SCHEMA_VERSION,
        "alert_id": slo_alert_id(slo.service, slo.name, action, incident["start"]),
        "kind": KIND, "status": status, "lens": "sre", "subject": slo.service,
        "services": [slo.service], "cohorts": [],
        "window_start": window_start, "window_end": window_start + window_s,
        "incident_start": incident["start"], "update_seq": incident["seq"],
        "severity": SEVERITY[action], "evidence": evidence(slo, window_start, mine),
        "candidates": [], "impact": {"checked": False, "requests": window_requests},
        "correlations": [], "related_alert_ids": [],
        "slo": {"name": slo.name, "sli": slo.sli, "threshold_ms": slo.threshold_ms,
                "objective_ratio": _r(slo.objective_ratio), "period_s": slo.period_s,
                "action": action, "error_budget_remaining_ratio": _r(remaining),
                "tripped": [r["pair"] for r in mine if r["tripped"]],
                "held": [r["pair"] for r in mine if r["held"]],
                "tripping_windows": incident["windows"], "labels": dict(slo.labels)},
    }
    alert["summary"] = summary(alert)
    return alert


def attach_impact(alert: dict, impact: dict, cx_evidence: Iterable[dict] = (),
                  related_alert_ids: Iterable[str] = ()) -> dict:
    """The alert with the CX check filled in: `impact` shaped as an SRE dip's (cohorts,
    sessions_affected, session_share, dependent_cohorts, requests, traffic_vs_usual,
    traffic_vs_peak, off_peak, and reasons/why when nobody was hurt), the affected cohorts'
    evidence, and the ids of their incidents. The summary is rewritten to say it."""
    out = {**alert, "impact": {**impact, "checked": True},
           "cohorts": sorted({c["cohort"] for c in impact.get("cohorts", [])}),
           "evidence": list(alert["evidence"]) + list(cx_evidence),
           "related_alert_ids": sorted(set(alert["related_alert_ids"]) | set(related_alert_ids))}
    out["summary"] = summary(out)
    return out


# ---- the sentence for the pager ------------------------------------------------------------
def summary(alert: dict) -> str:
    slo, who = alert["slo"], f"service {alert['subject']}"
    budget = _budget(slo["error_budget_remaining_ratio"], slo["period_s"])
    if alert["status"] == "resolved":
        return (f"Resolved: {who} {slo['name']} ({_objective(slo)}) back under its "
                f"{slo['action']} burn thresholds after {slo['tripping_windows']} window(s) "
                f"(from {_clock(alert['incident_start'])}); {budget}.")
    # Evidence comes in (long, short) pairs, the tripped pair with the highest burn first.
    long, short = [e for e in alert["evidence"] if e["metric"] == METRIC][:2]
    speed = "fast" if slo["action"] == "page" else "slow"
    return (f"{who.capitalize()} {slo['name']} ({_objective(slo)}): {speed} burn, "
            f"{long['value']:.1f}x over {long['window']} and {short['value']:.1f}x over "
            f"{short['window']} ({slo['action']} at {long['threshold']:g}x); {budget}"
            f"{_cx(alert['impact'])}.")


def _objective(slo: dict) -> str:
    percent = f"{slo['objective_ratio'] * 100:.6g}%"
    if slo["sli"] == LATENCY:
        return f"{percent} of requests within {slo['threshold_ms']:g} ms"
    return f"{percent} of requests without error"


def _budget(remaining: float | None, period_s: int) -> str:
    period = duration_text(period_s)
    if remaining is None:
        return f"no traffic in the {period} period"
    if remaining < 0:
        return f"{period} error budget overspent by {-remaining * 100:.0f}%"
    return f"{remaining * 100:.0f}% of the {period} error budget left"


def _cx(impact: dict) -> str:
    if not impact.get("checked"):
        return ""
    if impact.get("cohorts"):
        names = ", ".join(c["cohort"] for c in impact["cohorts"])
        return f"; users hurt in {names} ({impact['session_share'] * 100:.0f}% of sessions)"
    return f"; no user impact seen: {impact.get('why') or 'dependent cohorts flat'}"


def _clock(epoch_s: int) -> str:
    return datetime.fromtimestamp(epoch_s, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
