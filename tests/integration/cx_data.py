"""RUM files with known per-window truths for the CX lens, and the comparison of merged windows.

The truth is computed here from the events as written (rounded timestamps), with no code
from app/core/lenses/cx.py, following the definitions of the issue and of cx.py's docstring:

- sessions / frustrated sessions: distinct session ids per (cohort, window);
- a view is `view_id`, else the session (one view per session);
- per (cohort, window) and view: first `complete` c, first `abandon` a (event time);
  abandoned when a exists and (no c or a < c); complete when c exists and (no a or c <= a);
- services: per service, distinct views of the (cohort, window) whose events named it;
- ratios: frustrated sessions / sessions, abandons / page views;
- quantiles: numpy's default ("linear") quantile of the raw values.

Layout on the topic: most events are single JSON objects carrying `cohort`, so `replay` keys
them by cohort; the four cohort names hash (murmur2, Kafka's default partitioner) to four
different partitions. Short "bounce" sessions (all events within 1.8 s, less than the 2 s grace)
go out as one unkeyed JSON array each and land on a random partition, so most cohort-windows
have partials from several partitions. Because every (session, window) lives in exactly one
message-partition, distinct counts add exactly across partitions.
"""
from __future__ import annotations

import math
import random
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import orjson

START_S = 1_700_000_000  # a multiple of every window length used in the tests
FRUSTRATION = ("rage_click", "dead_click", "error_click", "excessive_scroll")
TTI_QUANTILES = (("p50", 0.50), ("p75", 0.75), ("p95", 0.95))
BOUNCE_SPAN_S = 1.8  # < grace: an unkeyed array never turns the next keyed line late

# name -> (tti median ms, tti sigma, frustrated-view share, services the cohort's pages call)
# Names chosen so that murmur2(name) % 4 gives partitions 0, 1, 2, 3 (checked by the test).
COHORTS = {
    "mobile_br": (2600.0, 0.45, 0.30, ("web", "media", "api")),
    "desktop_us": (1700.0, 0.40, 0.15, ("web", "api", "search")),
    "desktop_eu": (1500.0, 0.35, 0.20, ("web", "api", "checkout")),
    "mobile_de": (2400.0, 0.50, 0.25, ("web", "api", "media")),
}
# How a view ends (weights): the pair cases stay inside one window (see `_end_events`).
ENDINGS = (("complete", 0.50), ("complete_then_abandon", 0.15), ("abandon", 0.12),
           ("abandon_then_complete", 0.06), ("tie", 0.03), ("complete_twice", 0.04),
           ("open", 0.10))


def kafka_partition(key: str, partitions: int = 4) -> int:
    """The partition Kafka's default partitioner (murmur2) picks for a key."""
    from aiokafka.partitioner import murmur2

    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


def write_rum(path: Path, *, windows: int, window_s: int, views_per_window: int,
              bounce_share: float = 0.25, seed: int = 7,
              bad_line: dict | None = None) -> list[dict]:
    """Write the RUM NDJSON file; returns the valid events (every one the lens must fold).

    `views_per_window`: mean page views per cohort and window (steady over the whole file:
    sessions start before the first window and events outside [START, END) are dropped).
    `bad_line`: one extra object written as its own line in the middle (not returned).
    """
    rng = random.Random(seed)
    end_s = START_S + windows * window_s
    lines: list[tuple[float, int, bytes]] = []  # (sort ts, seq, bytes)
    events: list[dict] = []
    seq = 0
    mean_views = bounce_share + (1 - bounce_share) * 3.5  # regular sessions: 1..6 views
    for cohort, params in COHORTS.items():
        sessions = round(views_per_window / window_s / mean_views * (end_s - START_S + 60))
        for n in range(sessions):
            sid = f"{cohort}-s{n}"
            begin = START_S - 60 + rng.random() * (end_s - START_S + 60)
            if rng.random() < bounce_share:
                session = [e for e in _bounce(rng, cohort, sid, begin, params) if START_S <= e["ts"] < end_s]
                if session:
                    session.sort(key=lambda e: e["ts"])
                    events.extend(session)
                    lines.append((session[0]["ts"], seq, orjson.dumps(session)))
                    seq += 1
                continue
            for e in _regular(rng, cohort, sid, begin, window_s, params):
                if START_S <= e["ts"] < end_s:
                    events.append(e)
                    lines.append((e["ts"], seq, orjson.dumps(e)))
                    seq += 1
    lines.sort()
    if bad_line is not None:
        lines.insert(len(lines) // 2, (bad_line["ts"], -1, orjson.dumps(bad_line)))
    with open(path, "wb") as out:
        for _, _, raw in lines:
            out.write(raw + b"\n")
    events.sort(key=lambda e: e["ts"])
    return events


def _ts(t: float) -> float:
    return round(t, 3)


def _bounce(rng: random.Random, cohort: str, sid: str, t0: float, params) -> list[dict]:
    """A one-view session inside BOUNCE_SPAN_S; half of them carry no view_id (view = session)."""
    tti_median, tti_sigma, _, services = params
    base = {"session_id": sid, "cohort": cohort}
    if rng.random() < 0.5:
        base["view_id"] = f"{sid}-v0"
    at = lambda: _ts(t0 + rng.random() * BOUNCE_SPAN_S)  # noqa: E731
    out = [{**base, "ts": _ts(t0), "type": "page_view", "services": _services(rng, services)},
           {**base, "ts": at(), "type": "interactive",
            "tti_ms": round(rng.lognormvariate(math.log(tti_median), tti_sigma), 2)},
           {**base, "ts": at(), "type": "web_vital", "name": "LCP",
            "value": round(rng.lognormvariate(math.log(tti_median * 1.2), 0.4), 2)}]
    if rng.random() < 0.5:
        out += [{**base, "ts": at(), "type": "rage_click"} for _ in range(rng.choice((1, 2, 3)))]
    if rng.random() < 0.2:
        out.append({**base, "ts": at(), "type": "dead_click"})
    end = _ts(t0 + BOUNCE_SPAN_S)
    out.append({**base, "ts": end, "type": "abandon" if rng.random() < 0.7 else "complete"})
    return out


def _services(rng: random.Random, services: tuple[str, ...]) -> list[str]:
    picked = [services[0]] + [s for s in services[1:] if rng.random() < 0.6]
    if rng.random() < 0.05:
        picked.append(services[0])  # a producer that lists a service twice: still one view
    return picked


def _regular(rng: random.Random, cohort: str, sid: str, t: float, window_s: int, params) -> list[dict]:
    """A session of 1-6 views of a few seconds each: it often spans two windows."""
    tti_median, tti_sigma, frustrated_share, services = params
    out = []
    for v in range(rng.randint(1, 6)):
        base = {"session_id": sid, "cohort": cohort, "view_id": f"{sid}-v{v}"}
        tti_ms = round(rng.lognormvariate(math.log(tti_median), tti_sigma), 2)
        dwell = max(tti_ms / 1000 + 0.5, rng.lognormvariate(math.log(5.0), 0.5))
        view_services = _services(rng, services)
        out.append({**base, "ts": _ts(t), "type": "page_view", "services": view_services})
        interactive = {**base, "ts": _ts(t + tti_ms / 1000), "type": "interactive", "tti_ms": tti_ms}
        if rng.random() < 0.2:  # the same dependency named again on another event of the view
            interactive["services"] = view_services[:1]
        out.append(interactive)
        if rng.random() < 0.8:
            out.append({**base, "ts": _ts(t + rng.lognormvariate(math.log(tti_median * 1.1), 0.3) / 1000),
                        "type": "web_vital", "name": "LCP",
                        "value": round(rng.lognormvariate(math.log(tti_median * 1.1), 0.4), 2)})
        if rng.random() < 0.5:
            out.append({**base, "ts": _ts(t + rng.random() * dwell), "type": "web_vital", "name": "INP",
                        "value": float(rng.randint(40, 600))})
        if rng.random() < 0.6:
            out.append({**base, "ts": _ts(t + dwell * 0.9), "type": "web_vital", "name": "CLS",
                        "value": round(rng.lognormvariate(math.log(0.06), 0.8), 4)})
        if rng.random() < frustrated_share:
            out += _frustration(rng, base, t, dwell)
        out += _end_events(rng, base, t + dwell, window_s)
        t += dwell + 0.1 + rng.random() * 1.5
    return out


def _frustration(rng: random.Random, base: dict, t: float, dwell: float) -> list[dict]:
    kind = rng.choices(FRUSTRATION, weights=(0.4, 0.3, 0.2, 0.1))[0]
    at = t + rng.random() * dwell
    if kind == "rage_click":  # often two in a row, within a second
        return [{**base, "ts": _ts(at + i * 0.4), "type": kind} for i in range(rng.choice((1, 2, 2, 3)))]
    return [{**base, "ts": _ts(at), "type": kind}]


def _end_events(rng: random.Random, base: dict, te: float, window_s: int) -> list[dict]:
    ending = rng.choices([e for e, _ in ENDINGS], weights=[w for _, w in ENDINGS])[0]
    if ending == "open":
        return []
    if ending in ("complete", "abandon"):
        return [{**base, "ts": _ts(te), "type": ending}]
    gap = {"complete_then_abandon": 0.2 + rng.random() * 3, "abandon_then_complete": 0.1 + rng.random() * 2,
           "complete_twice": 0.1 + rng.random(), "tie": 0.0}[ending]
    first, second = _ts(te), _ts(te + gap)
    boundary = (int(second // window_s)) * window_s
    if first < boundary:  # keep the pair in one window: the verdict is per window
        first, second = _ts(boundary + 0.005), _ts(boundary + 0.005 + gap)
    kinds = {"complete_then_abandon": ("complete", "abandon"), "abandon_then_complete": ("abandon", "complete"),
             "complete_twice": ("complete", "complete"), "tie": ("abandon", "complete")}[ending]
    return [{**base, "ts": first, "type": kinds[0]}, {**base, "ts": second, "type": kinds[1]}]


# ---- truth ---------------------------------------------------------------------------------
def truths(events: list[dict], window_s: int) -> dict[tuple[str, int], dict]:
    """(cohort, window_start) -> the merged window's expected fields."""
    groups: dict[tuple[str, int], list[dict]] = defaultdict(list)
    for e in events:
        groups[(e["cohort"], int(e["ts"] // window_s) * window_s)].append(e)
    return {key: _truth(evs) for key, evs in groups.items()}


def _truth(evs: list[dict]) -> dict:
    sessions = {e["session_id"] for e in evs}
    frustrated = {e["session_id"] for e in evs if e["type"] in FRUSTRATION}
    counts = Counter(e["type"] for e in evs)
    first: dict[tuple[str, str], float] = {}  # (view, "complete"|"abandon") -> earliest ts
    view_services: set[tuple[str, str]] = set()
    for e in evs:
        view = e.get("view_id") or e["session_id"]
        if e["type"] in ("complete", "abandon"):
            k = (view, e["type"])
            first[k] = min(first.get(k, math.inf), e["ts"])
        for s in e.get("services", ()):
            view_services.add((view, s))
    views = {v for v, _ in first}
    abandons = completes = 0
    for v in views:
        c, a = first.get((v, "complete")), first.get((v, "abandon"))
        abandons += a is not None and (c is None or a < c)
        completes += c is not None and (a is None or c <= a)
    tti = np.array([e["tti_ms"] for e in evs if e["type"] == "interactive"])
    vitals: dict[str, list[float]] = defaultdict(list)
    for e in evs:
        if e["type"] == "web_vital":
            vitals[e["name"]].append(e["value"])
    page_views = counts["page_view"]
    return {
        "sessions": len(sessions), "page_views": page_views, "frustrated_sessions": len(frustrated),
        "frustration_events": {k: counts[k] for k in FRUSTRATION},
        "abandons": abandons, "completes": completes,
        "frustration_ratio": len(frustrated) / len(sessions),
        "abandonment_ratio": abandons / page_views if page_views else None,
        "services": dict(sorted(Counter(s for _, s in view_services).items())),
        "tti_samples": len(tti),
        "tti_ms": {k: float(np.quantile(tti, q)) for k, q in TTI_QUANTILES} if len(tti) else {},
        "web_vitals_p75": {n: float(np.quantile(np.array(v), 0.75)) for n, v in sorted(vitals.items())},
    }


# ---- what the file contains (so the test can say the hard cases are really there) ----------
def edge_cases(events: list[dict], window_s: int) -> dict[str, int]:
    per_sw: dict[tuple[str, int], Counter] = defaultdict(Counter)
    windows_of: dict[str, set[int]] = defaultdict(set)
    marks: dict[tuple[str, int], dict[str, float]] = defaultdict(dict)
    for e in events:
        w = int(e["ts"] // window_s)
        per_sw[(e["session_id"], w)][e["type"]] += 1
        windows_of[e["session_id"]].add(w)
        if e["type"] in ("complete", "abandon"):
            marks[(e.get("view_id") or e["session_id"], w)].setdefault(e["type"], e["ts"])
    both = [m for m in marks.values() if len(m) == 2]
    return {
        "sessions_spanning_windows": sum(len(ws) > 1 for ws in windows_of.values()),
        "session_windows_with_2plus_rage_clicks": sum(c["rage_click"] >= 2 for c in per_sw.values()),
        "views_complete_then_abandon": sum(m["complete"] < m["abandon"] for m in both),
        "views_abandon_then_complete": sum(m["abandon"] < m["complete"] for m in both),
        "views_complete_abandon_tie": sum(m["abandon"] == m["complete"] for m in both),
        "views_without_view_id": len({e["session_id"] for e in events if "view_id" not in e}),
    }


# ---- the lens's output ---------------------------------------------------------------------
def merged_cx_windows(records) -> tuple[dict[tuple[str, int], dict], list[str]]:
    """Merged CX windows from the windows topic, the last record per key (what a compacted topic
    keeps), and every key re-sent with different counts (a re-send must replace itself)."""
    out: dict[tuple[str, int], dict] = {}
    resent_differently = []
    for rec in records:
        value = orjson.loads(rec.value)
        if value.get("lens") != "cx":
            continue
        key = (value["subject"], value["window_start"])
        if key in out and _counts(out[key]) != _counts(value):
            resent_differently.append(
                f"{key} re-sent: sessions {out[key]['sessions']} from partitions {out[key]['partitions']}, "
                f"then {value['sessions']} from {value['partitions']}")
        out[key] = value
    return out, resent_differently


COUNT_FIELDS = ("sessions", "page_views", "frustrated_sessions", "frustration_events", "abandons",
                "completes", "frustration_ratio", "abandonment_ratio", "services")


def _counts(window: dict) -> tuple:
    return tuple(orjson.dumps(window[f], option=orjson.OPT_SORT_KEYS) for f in COUNT_FIELDS)


def compare(merged: dict, truth: dict, rel_tol: float = 0.01) -> list[str]:
    """Every mismatch, as text (empty when every window equals its truth)."""
    problems = []
    if set(merged) != set(truth):
        problems.append(f"windows missing: {sorted(set(truth) - set(merged))[:5]}, "
                        f"unexpected: {sorted(set(merged) - set(truth))[:5]}")
    for key in sorted(set(merged) & set(truth)):
        got, want = merged[key], truth[key]
        for field in COUNT_FIELDS:  # exact, ratios included (same integers, same division)
            if got[field] != want[field]:
                problems.append(f"{key} {field}: got {got[field]}, want {want[field]}")
        for q, exact in want["tti_ms"].items():
            value = got["tti_ms"].get(q)
            if value is None or abs(value / exact - 1) > rel_tol:
                problems.append(f"{key} tti {q}: got {value}, want {exact:.3f}")
        for name, exact in want["web_vitals_p75"].items():
            value = got["web_vitals"].get(name)
            if value is None or abs(value / exact - 1) > rel_tol:
                problems.append(f"{key} {name} p75: got {value}, want {exact:.4f}")
        if set(got["web_vitals"]) != set(want["web_vitals_p75"]):
            problems.append(f"{key} web vitals: got {sorted(got['web_vitals'])}, "
                            f"want {sorted(want['web_vitals_p75'])}")
    return problems
