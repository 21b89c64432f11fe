"""Memory per open window-subject, and t-digest accuracy, measured on the pure core.

`python -m app.bench.memory --services N --cohorts M` builds one SRE and one CX
`PartitionState` (the product's own state class, lens accumulators from `app.lenses`, the
product's default settings) with 2 open windows and all subjects in both, in a fresh
process, and reports per open window-subject:

- `rss`: resident memory grown by building the state (Python objects + the Rust digests);
- `python`: tracemalloc's count of Python allocations (Rust digests are invisible to it),
  measured in a second fresh process because tracing itself takes memory;
- both after folding and again after `checkpoint()` (which, since the state keeps digests in
  binary form, caches nothing: the two should agree).

Events are folded in batches of 10k through `PartitionState.fold`, as the lens agent does.
"""
from __future__ import annotations

import argparse
import gc
import math
import random
import sys
import tracemalloc

import orjson

from app.bench.stats import percentile, relative_error

RESULT_PREFIX = "BENCH_RESULT "
WINDOW_START = 1_700_000_040  # a multiple of 60
BATCH = 10_000


def _sre_events(services: int, windows: int, per_slot: int, rng: random.Random):
    from app.core.ingest.events import RequestEvent

    names = [f"svc-{i:05d}" for i in range(services)]
    batch = []
    for w in range(windows):
        # Window 2's events stay before start + 60 + grace: both windows remain open.
        lo = WINDOW_START + 60 * w
        for name in names:
            mu = math.log(20 + (hash(name) % 200))
            for _ in range(per_slot):
                status = 500 if rng.random() < 0.01 else 200
                batch.append(RequestEvent(lo + rng.random() * 9.0, name, rng.lognormvariate(mu, 0.6), status))
                if len(batch) >= BATCH:
                    yield batch
                    batch = []
    if batch:
        yield batch


def _cx_events(cohorts: int, windows: int, sessions: int, rng: random.Random):
    from app.core.ingest.events import RumEvent

    batch = []
    for w in range(windows):
        lo = WINDOW_START + 60 * w
        for c in range(cohorts):
            cohort = f"cohort-{c:03d}"
            for s in range(sessions):
                sid = f"{cohort}-{w}-{s:05d}"
                ts = lo + rng.random() * 8.0
                view = f"{sid}-v0"
                services = (f"svc-{rng.randrange(50):05d}", f"svc-{rng.randrange(50):05d}")
                batch += [RumEvent(ts, sid, "page_view", cohort, view, services=services),
                          RumEvent(ts + 0.5, sid, "interactive", cohort, view, tti_ms=rng.lognormvariate(7.3, 0.4)),
                          RumEvent(ts + 0.6, sid, "web_vital", cohort, view, name="LCP",
                                   value=rng.lognormvariate(7.6, 0.4)),
                          RumEvent(ts + 0.9, sid, "complete", cohort, view)]
                if rng.random() < 0.05:
                    batch.append(RumEvent(ts + 0.7, sid, "rage_click", cohort, view))
                if len(batch) >= BATCH:
                    yield batch
                    batch = []
    if batch:
        yield batch


def _build(lens_name: str, subjects: int, windows: int, per_slot: int, measure) -> dict:
    from app.config import window_spec
    from app.core.lenses.digest import digest_from_any
    from app.core.windows.partition import PartitionState
    from app.core.windows.windows import PartitionWatermark
    from app.lenses import lenses
    from app.settings import Settings

    settings = Settings.from_env({})
    lens = lenses(settings)[lens_name]
    spec = window_spec(settings)
    rng = random.Random(7)
    events = _sre_events(subjects, windows, per_slot, rng) if lens_name == "sre" \
        else _cx_events(subjects, windows, per_slot, rng)
    gc.collect()
    before = measure()
    state = PartitionState(lens.spec, spec, 0, subjects + 1, PartitionWatermark(spec))
    offset, folded = 0, 0
    for batch in events:
        offset += 1
        out = state.fold([(offset, batch)], 1_700_000_200.0)
        folded += out.folded
        if out.late:
            raise RuntimeError(f"{len(out.late)} events late: the windows did not stay open")
    del batch, events
    gc.collect()
    after_fold = measure()
    writes = state.checkpoint()
    sizes = [len(v) for k, v in writes.items() if not k.endswith("_meta")]
    centroids = []
    for k, v in writes.items():
        if not k.endswith("_meta"):
            acc = orjson.loads(v)["acc"]
            stored = acc.get("latency_ms_digest") or acc.get("tti_ms_digest")
            if stored is not None:
                centroids.append(digest_from_any(stored).n_centroids)
    del writes
    gc.collect()
    after_checkpoint = measure()
    slots = state.open_slots
    return {"lens": lens_name, "subjects": subjects, "windows": windows, "events_per_slot": per_slot,
            "events": folded, "open_slots": slots,
            "bytes_per_slot_after_fold": (after_fold - before) / slots,
            "bytes_per_slot_after_checkpoint": (after_checkpoint - before) / slots,
            "checkpoint_bytes_per_slot": sum(sizes) / len(sizes),
            "digest_centroids_mean": sum(centroids) / len(centroids) if centroids else None}


def _rss() -> int:
    from app.bench.procs import rss_bytes

    return rss_bytes()


def _traced() -> int:
    return tracemalloc.get_traced_memory()[0]


def digest_accuracy(compressions=(100, 200, 500), values_n: int = 100_000, partitions: int = 4,
                    seed: int = 3) -> list[dict]:
    """p50/p99/p99.9 relative errors on lognormal latencies (median 100 ms, sigma 1.0).

    `single`: one digest of all values; `merged`: `partitions` digests merged the way the
    joiner merges partials (`merge_wire` at compression x MERGE_RESOLUTION).
    """
    from fastdigest import TDigest
    from tdigest import TDigest as PyTDigest

    from app.core.lenses.digest import digest_to_wire, merge_wire
    from app.lenses import MERGE_RESOLUTION

    rng = random.Random(seed)
    values = [rng.lognormvariate(math.log(100), 1.0) for _ in range(values_n)]
    exact = {q: percentile(values, q) for q in (0.5, 0.99, 0.999)}
    rows = []
    for c in compressions:
        single = TDigest(max_centroids=c)
        single.batch_update(values)
        parts = []
        for p in range(partitions):
            d = TDigest(max_centroids=c)
            d.batch_update(values[p::partitions])
            parts.append(digest_to_wire(d))
        merged = merge_wire(parts, c * MERGE_RESOLUTION)
        rows.append({"digest": "fastdigest", "compression": c, "centroids": single.n_centroids,
                     "wire_bytes": len(orjson.dumps(digest_to_wire(single))), "binary_bytes": len(single.to_bytes()),
                     **{f"single_err_{_q(q)}": relative_error(single.quantile(q), exact[q]) for q in exact},
                     **{f"merged_err_{_q(q)}": relative_error(merged.quantile(q), exact[q]) for q in exact}})
    py = PyTDigest()
    py.batch_update(values[:20_000])
    exact20 = {q: percentile(values[:20_000], q) for q in exact}
    rows.append({"digest": "tdigest (pure Python, defaults; 20k values)", "compression": None,
                 "centroids": len(py), "wire_bytes": len(orjson.dumps(py.to_dict())), "binary_bytes": None,
                 **{f"single_err_{_q(q)}": relative_error(py.percentile(q * 100), exact20[q]) for q in exact}})
    return rows


def _q(q: float) -> str:
    return {0.5: "p50", 0.99: "p99", 0.999: "p999"}[q]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--lens", choices=("sre", "cx"), required=True)
    p.add_argument("--subjects", type=int, required=True)
    p.add_argument("--windows", type=int, default=2)
    p.add_argument("--per-slot", type=int, default=100, help="events (SRE) or sessions (CX) per slot")
    p.add_argument("--mode", choices=("rss", "python"), default="rss")
    args = p.parse_args()
    if args.mode == "python":
        tracemalloc.start()
        measure = _traced
    else:
        measure = _rss
    result = _build(args.lens, args.subjects, args.windows, args.per_slot, measure)
    result["mode"] = args.mode
    sys.stdout.write(RESULT_PREFIX + orjson.dumps(result).decode() + "\n")


if __name__ == "__main__":
    main()
