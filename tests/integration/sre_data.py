"""Request files with known per-window truths, and the comparison of merged windows to them."""
from __future__ import annotations

import math
import random
from pathlib import Path

import numpy as np
import orjson

START_S = 1_700_000_000  # a multiple of every window length used in the tests
SLICE_ERROR_RATIO = 0.05


def write_requests(path: Path, *, services: int, windows: int, window_s: int, per_window: int,
                   batch_share: float, seed: int = 7, batch_size: int = 50,
                   hot_window: tuple[int, int] | None = None) -> list[dict]:
    """Write NDJSON request lines (single objects, keyed by service on replay, and unkeyed JSON
    arrays that spread services over partitions). Returns the events, sorted by time."""
    rng = random.Random(seed)
    events = []
    for w in range(windows):
        for s in range(services):
            burst = rng.random() < 0.15  # some (window, service) pairs get 503 bursts in one slice
            burst_at = rng.random() * window_s
            for _ in range(per_window):
                offset = rng.random() * window_s
                status = 200
                roll = rng.random()
                if roll < 0.05:
                    status = 404  # a client error: not an error of the service
                elif roll < 0.07 or (burst and abs(offset - burst_at) < 2 and roll < 0.5):
                    status = 503
                events.append({"ts": round(START_S + w * window_s + offset, 6), "service": f"svc-{s:02d}",
                               "latency_ms": round(rng.lognormvariate(4 + 0.1 * s, 0.6), 3), "status": status})
    if hot_window:  # (window index, events): one busy service, to check digests on a large sample
        w, count = hot_window
        events += [{"ts": round(START_S + (w + rng.random()) * window_s, 6), "service": "svc-hot",
                    "latency_ms": round(rng.lognormvariate(5, 0.8), 3), "status": 200} for _ in range(count)]
    events.sort(key=lambda e: e["ts"])
    with open(path, "wb") as out:
        i = 0
        while i < len(events):
            if rng.random() < batch_share:
                out.write(orjson.dumps(events[i:i + batch_size]) + b"\n")
                i += batch_size
            else:
                out.write(orjson.dumps(events[i]) + b"\n")
                i += 1
    return events


def truths(events: list[dict], window_s: int, slice_s: int) -> dict[tuple[str, int], dict]:
    groups: dict[tuple[str, int], list[dict]] = {}
    for e in events:
        groups.setdefault((e["service"], int(e["ts"] // window_s) * window_s), []).append(e)
    out = {}
    for (service, start), evs in groups.items():
        latencies = np.array([e["latency_ms"] for e in evs])
        slices: dict[int, list[int]] = {}
        for e in evs:
            counts = slices.setdefault(int((e["ts"] - start) // slice_s), [0, 0])
            counts[0] += 1
            counts[1] += e["status"] >= 500
        up = sum(1 for n, err in slices.values() if err / n <= SLICE_ERROR_RATIO)
        out[(service, start)] = {
            "requests": len(evs),
            "errors": sum(e["status"] >= 500 for e in evs),
            "availability": up / len(slices),
            "latency_ms": {k: float(np.quantile(latencies, q)) for k, q in (("p50", .5), ("p95", .95), ("p99", .99))},
        }
    return out


def merged_sre_windows(records) -> dict[tuple[str, int], dict]:
    """Merged SRE windows from the windows topic; a key seen twice must carry the same counts."""
    out: dict[tuple[str, int], dict] = {}
    for rec in records:
        value = orjson.loads(rec.value)
        if value.get("lens") != "sre":
            continue
        key = (value["subject"], value["window_start"])
        if key in out:
            assert (out[key]["requests"], out[key]["errors"]) == (value["requests"], value["errors"]), \
                f"window {key} re-sent with different counts"
        out[key] = value
    return out


def compare(merged: dict, truth: dict, rel_tol: float = 0.01) -> list[str]:
    """Every mismatch, as text (empty when every window equals its truth)."""
    problems = []
    if set(merged) != set(truth):
        problems.append(f"windows missing: {sorted(set(truth) - set(merged))[:5]}, "
                        f"unexpected: {sorted(set(merged) - set(truth))[:5]}")
    for key in sorted(set(merged) & set(truth)):
        got, want = merged[key], truth[key]
        for field in ("requests", "errors"):
            if got[field] != want[field]:
                problems.append(f"{key} {field}: got {got[field]}, want {want[field]}")
        if not math.isclose(got["availability"], want["availability"], abs_tol=1e-12):
            problems.append(f"{key} availability: got {got['availability']}, want {want['availability']}")
        for q, exact in want["latency_ms"].items():
            if abs(got["latency_ms"][q] / exact - 1) > rel_tol:
                problems.append(f"{key} {q}: got {got['latency_ms'][q]:.3f}, want {exact:.3f}")
    return problems
