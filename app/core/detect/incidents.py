"""Incident lifecycle and alert building.

An episode is a run of dips of one subject: it opens on the first dipping window and
closes after `resolve_windows` consecutive windows without a dip (a window with no
data counts as not dipping: silence is not evidence of harm). Each episode is one
incident and one alert id, `sha1("<lens>_dip|<subject>|<incident_start>")`: the same
incident gets the same id after a restart, and re-sent messages deduplicate downstream.

Emission (docs/DETECTION.md): `firing` when the incident opens; `firing` again, same id,
`update_seq` + 1, when something material changes (kind, severity, involved services or
cohorts, top candidate), or as a heartbeat with fresh numbers in the first dipping window
at least `reemit_every_windows` after the last message; `resolved` when the episode
closes. Verdicts only ever upgrade within an incident (unexplained -> explained, no
impact -> impacting), so two messages with the same id never contradict each other.
"""
import hashlib
from datetime import datetime, timezone

from app.core.detect.dips import CX, DetectionConfig

SCHEMA_VERSION = 1
KIND_RANK = {"cx_dip_unexplained": 0, "cx_dip_explained": 1,
             "sre_dip_no_user_impact": 0, "sre_dip_user_impacting": 1}
SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}


def step_episode(episode: dict | None, dipped: bool, window_start: int,
                 resolve_windows: int) -> tuple[dict | None, str | None]:
    """One window of one subject -> (episode after it, event: open|dip|healthy|close|None)."""
    if episode is None:
        return ({"start": window_start, "healthy": 0}, "open") if dipped else (None, None)
    if dipped:
        return {**episode, "healthy": 0}, "dip"
    healthy = episode["healthy"] + 1
    if healthy >= resolve_windows:
        return None, "close"
    return {**episode, "healthy": healthy}, "healthy"


def alert_id(lens: str, subject: str, incident_start: int) -> str:
    """Deterministic incident id. The lens (not the verdict) is hashed, because a verdict
    may upgrade while the incident lasts and the id must not change with it."""
    return hashlib.sha1(f"{lens}_dip|{subject}|{incident_start}".encode()).hexdigest()[:20]


def relative_change(check: dict) -> float | None:
    """(value - baseline) / |baseline|, signed as the metric moves; None from a zero baseline."""
    base = check["baseline"]
    return _round((check["value"] - base) / abs(base)) if base else None


def evidence_entry(lens: str, subject: str, window_start: int, metric: str,
                   check: dict) -> dict:
    return {"lens": lens, "subject": subject, "metric": metric, "window_start": window_start,
            "value": _round(check["value"]), "baseline": _round(check["baseline"]),
            "change": relative_change(check), "threshold": _round(check["threshold"]),
            "dip": bool(check["dip"])}


class IncidentBook:
    """The open incidents (one per lens and subject) and the alerts they emit."""

    def __init__(self, cfg: DetectionConfig, state: dict | None = None) -> None:
        self.cfg = cfg
        self._open: dict[str, dict] = {k: dict(v) for k, v in (state or {}).items()}

    def on_dip(self, verdict: dict, start: int, window_start: int) -> list[dict]:
        key = f"{verdict['lens']}|{verdict['subject']}"
        inc = self._open.get(key)
        if inc is None or inc["start"] != start:
            inc = {"id": alert_id(verdict["lens"], verdict["subject"], start), "start": start,
                   "seq": -1, "fingerprint": None, "emitted_at": None, "body": None,
                   "dip_windows": 0}
            self._open[key] = inc
        inc["dip_windows"] += 1
        body = _upgrade_only(inc["body"], verdict)
        inc["body"] = body
        fingerprint = [body["kind"], body["severity"], body["services"], body["cohorts"],
                       body["candidates"][0]["service"] if body["candidates"] else None]
        every_s = self.cfg.reemit_every_windows * self.cfg.window_s
        heartbeat = every_s > 0 and inc["emitted_at"] is not None \
            and window_start - inc["emitted_at"] >= every_s
        if inc["seq"] >= 0 and fingerprint == inc["fingerprint"] and not heartbeat:
            return []
        inc.update(seq=inc["seq"] + 1, fingerprint=fingerprint, emitted_at=window_start)
        return [self._alert(inc, "firing", window_start, body)]

    def on_close(self, lens: str, subject: str, window_start: int,
                 checks: dict) -> list[dict]:
        inc = self._open.pop(f"{lens}|{subject}", None)
        if inc is None:
            return []
        body = inc["body"]
        own, others = _split(body["evidence"], lens, subject)
        fresh = [evidence_entry(lens, subject, window_start, e["metric"], checks[e["metric"]])
                 for e in own if e["metric"] in checks]
        inc["seq"] += 1
        return [self._alert(inc, "resolved", window_start, {**body, "evidence": fresh + others})]

    def active(self) -> list[tuple[str, str, str, str]]:
        """(alert_id, kind, lens, subject) of every open incident that has fired, by id:
        the data of the `lensbridge_alert_active{kind,subject}` gauge."""
        return sorted((inc["id"], inc["body"]["kind"], inc["body"]["lens"],
                       inc["body"]["subject"]) for inc in self._open.values() if inc["body"])

    def to_state(self) -> dict:
        return {k: dict(v) for k, v in self._open.items()}

    def open_incident(self, lens: str, subject: str) -> dict | None:
        """The subject's open incident as stored (not a copy), None if it has none."""
        return self._open.get(f"{lens}|{subject}")

    def _alert(self, inc: dict, status: str, window_start: int, body: dict) -> dict:
        alert = {"schema_version": SCHEMA_VERSION, "alert_id": inc["id"], "status": status,
                 "window_start": window_start, "window_end": window_start + self.cfg.window_s,
                 "incident_start": inc["start"], "update_seq": inc["seq"], **body}
        alert["summary"] = summary(alert, inc["dip_windows"])
        return alert


def _upgrade_only(last: dict | None, verdict: dict) -> dict:
    """This window's verdict, except that a weaker kind keeps the incident's stronger
    findings (candidates, affected cohorts) while the dipping subject's numbers refresh."""
    if last is None:
        return verdict
    body = verdict
    if KIND_RANK[verdict["kind"]] < KIND_RANK[last["kind"]]:
        own, _ = _split(verdict["evidence"], verdict["lens"], verdict["subject"])
        _, older = _split(last["evidence"], verdict["lens"], verdict["subject"])
        body = {**last, "evidence": own + older, "correlations": verdict["correlations"]}
    severity = max(last["severity"], body["severity"], key=SEVERITY_RANK.__getitem__)
    return {**body, "severity": severity}


def _split(evidence: list[dict], lens: str, subject: str) -> tuple[list[dict], list[dict]]:
    """(the dipping subject's own evidence, the rest)."""
    own = [e for e in evidence if e["lens"] == lens and e["subject"] == subject]
    return own, [e for e in evidence if not (e["lens"] == lens and e["subject"] == subject)]


# ---- the sentence for the pager ------------------------------------------------------------
def summary(alert: dict, dip_windows: int) -> str:
    who = f"{'cohort' if alert['lens'] == CX else 'service'} {alert['subject']}"
    if alert["status"] == "resolved":
        return (f"Resolved: {who} back to normal after {dip_windows} dipping window(s) "
                f"({alert['kind']}, from {_clock(alert['incident_start'])}).")
    head = _headline(alert)
    kind, impact = alert["kind"], alert["impact"]
    if kind == "cx_dip_explained":
        top = alert["candidates"][0]
        return (f"Users of {who} hurting: {head}; likely cause: service {top['service']} "
                f"{top['metric']} {pct(top['change'])} (score {top['score']:.2f}).")
    if kind == "cx_dip_unexplained":
        return (f"Users of {who} hurting: {head}; no backend service they depend on moved: "
                "look at the frontend, content or third parties.")
    if kind == "sre_dip_user_impacting":
        return (f"{who.capitalize()} dipped: {head}; users hurt in "
                f"{', '.join(alert['cohorts'])} ({impact['session_share'] * 100:.0f}% "
                "of sessions).")
    return f"{who.capitalize()} dipped: {head}; no user impact: {impact['why']}."


def _headline(alert: dict) -> str:
    own = [e for e in alert["evidence"]
           if e["subject"] == alert["subject"] and e["lens"] == alert["lens"] and e["dip"]]
    if not own:
        return "dipping"
    e = own[0]
    return (f"{e['metric']} {_fmt(e['metric'], e['value'])} vs usual "
            f"{_fmt(e['metric'], e['baseline'])} ({pct(e['change'])})")


def _fmt(metric: str, value: float) -> str:
    return f"{value:.0f} ms" if metric.endswith("_ms") else f"{value * 100:.1f}%"


def pct(change: float | None) -> str:
    return "up from zero" if change is None else f"{change * 100:+.0f}%"


def _clock(epoch_s: int) -> str:
    return datetime.fromtimestamp(epoch_s, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _round(x: float) -> float:
    """Six decimals: stable bytes for deduplication, more precision than anyone reads."""
    return round(float(x), 6)
