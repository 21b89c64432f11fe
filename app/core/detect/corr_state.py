"""The correlator's durable state, cut per subject so no table value grows with the fleet.

One value per (lens, subject) under `corr|<lens>|<subject>`: the subject's buffered window
records and detections, its baselines (metric series and traffic series), its open dip
episode and its open incident. One small value under `corr|_global` for the rest (lens
completeness, scheduling positions, the late-window count). Joined back together they are
exactly `Correlator.to_state()`, so a restore from the parts decides what an unbroken run
decides, under the same alert ids.

A subject's value is bounded by the settings, not by the fleet: records and detections of
at most max(baseline_windows, link_windows) + lag windows once decided (plus the windows a
skewed lens holds back, at most `max_pending_windows`), `baseline_windows` values per metric,
`traffic_windows` traffic values, one episode and one incident. A subject whose value is
empty (no window for `traffic_windows` windows, so its baselines were forgotten, and no open
episode or incident) is evicted: `subject_state` returns None and the caller tombstones it.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from app.core.detect.dips import LENSES

if TYPE_CHECKING:  # correlate.py imports this module
    from app.core.detect.correlate import Correlator

# The functions taking `corr` are the Correlator's own state, cut out of correlate.py: they
# read its private fields (hence the SLF001 exemptions below), and nothing else does.

PREFIX = "corr|"
GLOBAL_KEY = "corr|_global"  # a lens is never named "_global": no subject key collides


def subject_key(lens: str, subject: str) -> str:
    return f"{PREFIX}{lens}|{subject}"


def parse_key(key: str) -> tuple[str, str] | None:
    """(lens, subject) of a subject key; None for the global key (or any other)."""
    _, lens, subject = (key.split("|", 2) + ["", ""])[:3]
    return (lens, subject) if lens in LENSES and subject else None


def global_state(corr: Correlator) -> dict:
    return {"version": corr.STATE_VERSION, "window_s": corr.cfg.window_s,
            "complete": dict(corr._complete), "next_detect": dict(corr._next_detect),  # noqa: SLF001
            "next_decide": corr._next_decide, "late_windows": corr.late_windows}  # noqa: SLF001


def subject_state(corr: Correlator, lens: str, subject: str) -> dict | None:
    """The subject's part of the state, or None when it holds nothing (evict it)."""
    detector = corr._detectors[lens]  # noqa: SLF001
    records, detections = corr._records[lens], corr._detections[lens]  # noqa: SLF001
    values, traffic = detector.baselines.series_of(subject)
    part = {
        "records": {str(ws): recs[subject] for ws, recs in sorted(records.items()) if subject in recs},
        "detections": {str(ws): d[subject] for ws, d in sorted(detections.items()) if subject in d},
        "values": values,
        "traffic": traffic,
        "episode": detector.episodes.get(subject),
        "incident": corr._incidents.open_incident(lens, subject),  # noqa: SLF001
    }
    part = {k: v for k, v in part.items() if v}
    return part or None


def subjects(corr: Correlator) -> set[tuple[str, str]]:
    records, detections = corr._records, corr._detections  # noqa: SLF001
    found = {(lens, s) for lens in LENSES for by_ws in (records[lens], detections[lens])
             for recs in by_ws.values() for s in recs}
    for lens in LENSES:
        detector = corr._detectors[lens]  # noqa: SLF001
        found |= {(lens, s) for s in [*detector.baselines.subjects(), *detector.episodes]}
    incidents = corr._incidents.to_state()  # noqa: SLF001
    return found | {(lens, s) for lens, s in (k.split("|", 1) for k in incidents)}


def assemble(global_part: dict | None, parts: dict[tuple[str, str], dict]) -> dict:
    """The full `Correlator` state from the global value and the subject values."""
    full = dict(global_part or {})
    full.update(records={lens: {} for lens in LENSES}, detections={lens: {} for lens in LENSES},
                detectors={lens: {"baselines": {"values": {}, "traffic": {}}, "episodes": {}}
                           for lens in LENSES},
                incidents={})
    for (lens, subject), part in sorted(parts.items()):
        for field in ("records", "detections"):
            for ws, value in part.get(field, {}).items():
                full[field][lens].setdefault(ws, {})[subject] = value
        detector = full["detectors"][lens]
        for field in ("values", "traffic"):
            if part.get(field):
                detector["baselines"][field][subject] = part[field]
        if part.get("episode"):
            detector["episodes"][subject] = part["episode"]
        if part.get("incident"):
            full["incidents"][f"{lens}|{subject}"] = part["incident"]
    return full


# ---- crash safety -------------------------------------------------------------------------
# One write of the changed subjects is several records: a crash part-way through would leave
# some subjects a window ahead of the rest, and re-deciding that window would step their
# episodes and incidents twice. So every write carries a sequence number: the global value
# says which write last completed (it is written after the subject values, in order, on one
# changelog partition), and each subject value holds its new part and the one before. A value
# from a write that did not complete restores its previous part: the state of the last
# complete write, exactly. An evicted subject is first written as an empty part (`cur` null)
# and tombstoned by the next write.
def envelope(seq: int, cur: bytes | None, prev: bytes | None) -> bytes:
    """A subject value from parts already dumped as JSON (no re-serialisation)."""
    return b'{"as_of":%d,"cur":%b,"prev":%b}' % (seq, cur or b"null", prev or b"null")


def global_envelope(seq: int, state: dict) -> dict:
    return {"seq": seq, "correlator": state}


def restore(global_value: dict | None, values: dict[str, dict]
            ) -> tuple[int, dict | None, dict[tuple[str, str], dict], bool]:
    """(last complete write, global part, subject parts, whether a write was cut short)."""
    seq = (global_value or {}).get("seq", 0)
    parts, torn = {}, False
    for key, value in values.items():
        pair = parse_key(key)
        if pair is None or not isinstance(value, dict):
            continue
        torn = torn or value.get("as_of", 0) > seq
        part = value.get("cur") if value.get("as_of", 0) <= seq else value.get("prev")
        if part:
            parts[pair] = part
    return seq, (global_value or {}).get("correlator"), parts, torn
