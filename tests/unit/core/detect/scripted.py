"""Scripted windows for the correlator's tests: every subject's numbers follow the fixed
NOISE list, and an incident is a set of overrides for some windows of one subject."""
import orjson

from app.core.detect.correlate import Correlator

W = 60
T0 = 1_767_225_600  # 2026-01-01T00:00:00Z
NOISE = (1.00, 1.03, 0.98, 1.01, 0.97, 1.02, 0.99, 1.04, 0.96, 1.00, 1.01, 0.98)
GAP = "gap"
SERVICES = {"checkout": 2000, "search": 3000}
COHORTS = {"web": (400, {"checkout": 0.6, "search": 0.5}), "mobile": (300, {"search": 0.7})}


def ws(i):
    return T0 + i * W


def sre_window(service, i, requests=2000, error_ratio=0.01, p95=200.0, p99=400.0, slices_up=6):
    f = NOISE[i % len(NOISE)]
    requests = round(requests * f)
    errors = round(requests * error_ratio * f)
    return {"lens": "sre", "subject": service, "window_start": ws(i), "window_end": ws(i) + W,
            "requests": requests, "errors": errors, "error_ratio": errors / requests,
            "availability": slices_up / 6, "slices_up": slices_up, "slices_with_traffic": 6,
            "latency_ms": {"p50": p95 / 2 * f, "p95": p95 * f, "p99": p99 * f}}


def cx_window(cohort, i, sessions=400, frustration=0.05, abandonment=0.04, tti=1500.0,
              services=None):
    f = NOISE[i % len(NOISE)]
    sessions = round(sessions * f)
    views = 3 * sessions
    frustrated, abandons = round(sessions * frustration * f), round(views * abandonment * f)
    return {"lens": "cx", "subject": cohort, "window_start": ws(i), "window_end": ws(i) + W,
            "sessions": sessions, "page_views": views, "frustrated_sessions": frustrated,
            "frustration_events": {"rage_click": frustrated}, "abandons": abandons,
            "completes": views - abandons, "frustration_ratio": frustrated / sessions,
            "abandonment_ratio": abandons / views,
            "tti_ms": {"p50": tti * 0.6 * f, "p75": tti * f, "p95": tti * 2 * f},
            "web_vitals": {"LCP": 2000.0},
            "services": {s: round(views * share) for s, share in (services or {}).items()}}


def script(n, changes=(), services=SERVICES, cohorts=COHORTS):
    """Windows 0..n-1 as [(sre windows, cx windows)]. `changes`: (lens, subject, windows,
    overrides or GAP) applied over each subject's normal traffic."""
    def merged(lens, subject, i, normal, build):
        kw = dict(normal)
        for c_lens, c_subject, windows, over in changes:
            if (c_lens, c_subject) == (lens, subject) and i in windows:
                if over == GAP:
                    return None
                kw.update(over)
        return build(subject, i, **kw)

    out = []
    for i in range(n):
        sre = [merged("sre", s, i, {"requests": r}, sre_window)
               for s, r in sorted(services.items())]
        cx = [merged("cx", c, i, {"sessions": n_s, "services": links}, cx_window)
              for c, (n_s, links) in sorted(cohorts.items())]
        out.append(([m for m in sre if m], [m for m in cx if m]))
    return out


def run(windows, cfg=None, corr=None, start=0):
    """Both lenses window by window (the aligned case)."""
    corr = corr or Correlator(cfg)
    alerts = []
    for i, (sre, cx) in enumerate(windows[start:], start):
        for m in sre + cx:
            alerts += corr.on_window(m)
        alerts += corr.on_lens_complete("sre", ws(i) + W)
        alerts += corr.on_lens_complete("cx", ws(i) + W)
    return alerts, corr


def run_lens_first(windows, first, cfg=None):
    """One lens's whole topic replayed before the other's."""
    corr, alerts = Correlator(cfg), []
    second = "cx" if first == "sre" else "sre"
    pick = {"sre": 0, "cx": 1}
    for i, pair in enumerate(windows):
        for m in pair[pick[first]]:
            alerts += corr.on_window(m)
        alerts += corr.on_lens_complete(first, ws(i) + W)
    for i, pair in enumerate(windows):
        for m in pair[pick[second]]:
            alerts += corr.on_window(m)
        alerts += corr.on_lens_complete(second, ws(i) + W)
    return alerts


def brief(alerts):
    return [(a["kind"], a["subject"], a["status"], (a["window_start"] - T0) // W, a["update_seq"])
            for a in alerts]


def firing_at(alerts, i):
    return {(a["kind"], a["subject"]) for a in alerts
            if a["status"] == "firing" and a["window_start"] == ws(i)}


def by_subject(alerts, subject):
    return [a for a in alerts if a["subject"] == subject]


def dumps(obj):
    return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)


CHECKOUT_SLOW = ("sre", "checkout", range(15, 18), {"p95": 800.0})
WEB_FRUSTRATED = ("cx", "web", range(15, 18), {"frustration": 0.25, "tti": 3000.0})


# Incidents of both lenses at several windows (the lens-skew and restart cases).
MIXED = [CHECKOUT_SLOW, WEB_FRUSTRATED,
         ("cx", "mobile", range(30, 33), {"abandonment": 0.3}),
         ("sre", "search", range(40, 42), {"requests": 400, "error_ratio": 0.2}),
         ("cx", "web", range(50, 56), {"frustration": 0.3}),
         ("sre", "checkout", [53], {"p95": 700.0})]


def step(corr, pair, i):
    """One window of both lenses, then both complete past it."""
    alerts = []
    for m in pair[0] + pair[1]:
        alerts += corr.on_window(m)
    alerts += corr.on_lens_complete("sre", ws(i) + W)
    return alerts + corr.on_lens_complete("cx", ws(i) + W)
