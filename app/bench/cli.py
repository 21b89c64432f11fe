"""`lensbridge bench`: arguments, the run order, and where the results go.

Rows run in rounds (round i runs every row once, in the same order), so run i of two rows
shared the machine's load of that moment: the ratios are computed per round.
"""
from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import importlib.metadata
import importlib.util
import math
import os
import platform
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path

from app.bench import report

# Imported by `lensbridge`'s argument parser: everything heavier loads inside the functions.

CEILING = "app.bench.baselines.aiokafka_ceiling"
PACKAGES = ("faust-streaming", "aiokafka", "orjson", "fastdigest", "tdigest", "quixstreams",
            "confluent-kafka", "py-spy")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--events", type=int, default=100_000, help="events in the 1-event-per-message topic")
    p.add_argument("--batched-events", type=int, default=1_000_000, help="events in each batched topic")
    p.add_argument("--batch", type=int, default=100, help="events per batched message")
    p.add_argument("--runs", type=int, default=3, help="runs per row (median, min, max)")
    p.add_argument("--textbook-events", type=int, default=10_000,
                   help="row 3 stops after this many events (~1k events/s; ~9 KB of changelog each)")
    p.add_argument("--quix-array-events", type=int, default=200_000,
                   help="row 6a stops after this many events (~8k events/s)")
    p.add_argument("--rows", default=",".join(report.ROWS), help="rows to run, e.g. 1,3,4")
    p.add_argument("--skip", default="", help="comma list of: latency, memory")
    p.add_argument("--profile", action="store_true",
                   help="also record py-spy profiles of rows 1 and 2a (extra runs, not timed)")
    p.add_argument("--latency-speed", type=float, default=5.0, help="pace of the live demo replay")
    p.add_argument("--quick", action="store_true", help="small and 1 run: a smoke test of the bench itself")
    p.add_argument("--out", default="bench/results", help="directory for latest.json and dated copies")
    p.add_argument("--keep-topics", action="store_true", help="do not delete the bench's topics")


def _config(args: argparse.Namespace) -> dict:
    cfg = {k: getattr(args, k) for k in ("events", "batched_events", "batch", "runs", "textbook_events",
                                          "quix_array_events", "latency_speed", "profile", "quick")}
    if args.quick:
        cfg.update(events=min(args.events, 20_000), batched_events=min(args.batched_events, 200_000), runs=1,
                   textbook_events=min(args.textbook_events, 2_000),
                   quix_array_events=min(args.quix_array_events, 50_000), latency_speed=max(args.latency_speed, 10.0))
    cfg["rows"] = [r for r in args.rows.split(",") if r in report.ROWS]
    cfg["skip"] = [s for s in args.skip.split(",") if s]
    return cfg


def machine_info() -> dict:
    from app.bench import kafka_admin

    model = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    kafka = sorted(p.name for p in (kafka_admin.ROOT / ".kafka" / "libs").glob("kafka-clients-*.jar"))
    return {"nproc": os.cpu_count(), "cpu_model": model, "python": platform.python_version(),
            "kernel": platform.release(), "load_start": _load(), "packages": versions,
            "kafka": kafka[0].removeprefix("kafka-clients-").removesuffix(".jar") if kafka else None}


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _specs(cfg: dict) -> list:
    from app.bench.rows import RowSpec

    ev, bev = cfg["events"], cfg["batched_events"]
    specs = {
        "1": RowSpec("1", report.ROWS["1"], "lensbridge", "single"),
        "2a": RowSpec("2a", report.ROWS["2a"], "lensbridge", "array"),
        "2n": RowSpec("2n", report.ROWS["2n"], "lensbridge", "ndjson"),
        "3": RowSpec("3", report.ROWS["3"], "app.bench.baselines.faust_textbook", "single",
                     events_cap=min(ev, cfg["textbook_events"])),
        "4": RowSpec("4", report.ROWS["4"], "app.bench.baselines.faust_iterate", "single"),
        # The ceiling reads ~1M (single) or ~2M (batched) events: long enough to time well.
        "5": RowSpec("5", report.ROWS["5"], CEILING, "single", passes=max(1, math.ceil(1_000_000 / ev))),
        "5a": RowSpec("5a", report.ROWS["5a"], CEILING, "array", passes=max(1, math.ceil(2_000_000 / bev))),
        "5n": RowSpec("5n", report.ROWS["5n"], CEILING, "ndjson", passes=max(1, math.ceil(2_000_000 / bev))),
        "6": RowSpec("6", report.ROWS["6"], "app.bench.baselines.quix_peer", "single"),
        "6a": RowSpec("6a", report.ROWS["6a"], "app.bench.baselines.quix_peer", "array",
                      events_cap=min(bev, cfg["quix_array_events"])),
    }
    return [specs[k] for k in cfg["rows"]]


def _log(msg: str) -> None:
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def _run_row(spec, ds, kafka: dict, unique: str, work: Path, compression: int,
             keep: bool, profile_to: Path | None = None) -> dict:
    from app.bench.rows import run_baseline_row, run_lensbridge

    topic = {"single": ds.single, "array": ds.array, "ndjson": ds.ndjson}[spec.framing]
    total = ds.events if spec.framing == "single" else ds.batched_events
    if spec.kind == "lensbridge":
        result = run_lensbridge(kafka, topic, total, unique, work, timeout_s=120 + total / 1000,
                                profile_to=profile_to, keep_topics=keep)
        events_total = total
    else:
        events = spec.events_cap or total
        result = run_baseline_row(spec, kafka, topic, events, unique, work,
                                  timeout_s=120 + events * spec.passes / 500, compression=compression,
                                  keep_topics=keep)
        events_total = events * spec.passes
    return {**result.to_json(), "events_total": events_total}


def run_rows(cfg: dict, ds, kafka: dict, prefix: str, work: Path, compression: int, keep: bool) -> dict:
    quix_ok = importlib.util.find_spec("quixstreams") is not None
    specs = _specs(cfg)
    rows: dict[str, dict] = {s.key: {"label": s.label, "framing": s.framing, "runs": [],
                                     "events": (s.events_cap or (ds.events if s.framing == "single"
                                                                 else ds.batched_events)) * s.passes}
                             for s in specs}
    for key in ("6", "6a"):
        if key in rows and not quix_ok:
            rows[key]["error"] = "quixstreams is not installed (pip install quixstreams)"
    for round_no in range(cfg["runs"]):
        for spec in specs:
            if rows[spec.key].get("error"):
                continue
            unique = f"{prefix}-r{round_no}-{spec.key}"
            try:
                run = _run_row(spec, ds, kafka, unique, work, compression, keep)
            except Exception as exc:  # one broken row must not lose the others
                _log(f"row {spec.key} run {round_no + 1} failed: {exc}")
                run = {"error": str(exc)[:500]}
            rows[spec.key]["runs"].append(run)
            if "error" not in run:
                _log(f"round {round_no + 1}/{cfg['runs']} row {spec.key:<3} {run['events_per_s']:>10,.0f} events/s "
                     f"{run['cpu_s_per_m_events']:>7.1f} CPU s/M  load {_load()}")
    for row in rows.values():
        good = [r for r in row["runs"] if "error" not in r]
        if not good and not row.get("error"):
            row["error"] = "every run failed: " + "; ".join(r["error"][:200] for r in row["runs"])
        row["runs_ok"] = good
        row["summary"] = report.row_summary(good) if good else None
    return rows


def run_memory(cfg: dict, work: Path) -> dict:
    from app.bench.memory import digest_accuracy
    from app.bench.procs import run_baseline

    sizes = [("sre", 1000, 2, 100), ("cx", 100, 2, 50)] if cfg["quick"] else \
        [("sre", 1000, 2, 100), ("sre", 10_000, 2, 100), ("sre", 50, 2, 20_000), ("cx", 100, 2, 50)]
    per_slot = []
    for lens, subjects, windows, per in sizes:
        for mode in ("rss", "python"):
            args = ["--lens", lens, "--subjects", str(subjects), "--windows", str(windows),
                    "--per-slot", str(per), "--mode", mode]
            per_slot.append(run_baseline("app.bench.memory", args, work / "memory.log", timeout_s=600))
            _log(f"memory {lens} {subjects} subjects {per}/slot {mode}: "
                 f"{per_slot[-1]['bytes_per_slot_after_checkpoint']:,.0f} B/slot after checkpoint")
    return {"per_slot": per_slot, "accuracy": digest_accuracy()}


def run_profiles(ds, kafka: dict, prefix: str, work: Path, out_dir: Path, keep: bool) -> dict:
    from app.bench.profile import format_profile, summarize_file
    from app.bench.rows import run_lensbridge

    profiles = {}
    for key, _framing, topic, total in (("1", "single", ds.single, ds.events),
                                        ("2a", "array", ds.array, ds.batched_events)):
        raw = out_dir / f"profile-row{key}.txt"
        if shutil.which("py-spy", path=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}") is None:
            return {"error": "py-spy is not installed (pip install py-spy)"}
        result = run_lensbridge(kafka, topic, total, f"{prefix}-prof-{key}", work, 120 + total / 1000,
                                profile_to=raw, keep_topics=keep)
        summary = summarize_file(raw, top=20)
        profiles[key] = {"raw_file": str(raw), "events_per_s_while_profiled": round(result.events_per_s),
                         **summary}
        _log(format_profile(f"profile row {key}", summary))
    return profiles


def bench_command(args: argparse.Namespace, settings) -> int:
    import orjson

    from app.bench import kafka_admin
    from app.kafka.client import client_options, explain_failure

    cfg = _config(args)
    kafka = client_options(settings)  # every bench client connects like the worker (app/kafka/client.py)
    bootstrap = settings.bootstrap_servers
    started = time.time()
    stamp = dt.datetime.fromtimestamp(started, dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out_dir = kafka_admin.ROOT / args.out if not os.path.isabs(args.out) else Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        asyncio.run(kafka_admin.list_topics(kafka))
    except Exception as exc:
        print(f"lensbridge bench: {explain_failure(exc, settings)}", file=sys.stderr)
        return 2
    results: dict = {"schema_version": 1, "started_at": dt.datetime.fromtimestamp(started, dt.timezone.utc)
                     .isoformat(timespec="seconds"), "machine": machine_info(), "config": cfg,
                     "bootstrap": bootstrap}
    prefix = f"bench-{stamp.lower()}-{secrets.token_hex(2)}"
    work = Path(tempfile.mkdtemp(prefix="lensbridge-bench-"))
    _log(f"work dir {work}; topics {prefix}-*; load {_load()}")
    ds = None
    try:
        t = time.monotonic()
        from app.bench.data import build_dataset

        ds = asyncio.run(build_dataset(kafka, prefix, cfg["events"], cfg["batched_events"], cfg["batch"]))
        results["dataset"] = {"topics": ds.topics(), "events": ds.events, "batched_events": ds.batched_events,
                              "batch": ds.batch, "bytes_per_event": round(ds.single_bytes / ds.events, 1),
                              "event_time_span_s": round(ds.last_ts_s - ds.first_ts_s),
                              "source": "scenarios/two_hours.json (request rate scaled), keyed by service"}
        _log(f"data: {ds.events:,} single + 2 x {ds.batched_events:,} batched events in {time.monotonic() - t:.1f} s")
        if cfg["rows"]:
            results["rows"] = run_rows(cfg, ds, kafka, prefix, work, settings.digest_compression,
                                       args.keep_topics)
            results["ratios"] = report.ratios({k: {"runs": [r if "error" not in r else {"events_per_s": None}
                                                            for r in v["runs"]]}
                                               for k, v in results["rows"].items()})
        if cfg["profile"]:
            results["profiles"] = run_profiles(ds, kafka, prefix, work, out_dir, args.keep_topics)
        if "latency" not in cfg["skip"]:
            from app.bench.latency import measure_latency

            _log(f"alert latency: demo scenario live at {cfg['latency_speed']}x")
            try:
                results["latency"] = measure_latency(kafka, f"{prefix}-lat", work, cfg["latency_speed"],
                                                     args.keep_topics)
            except Exception as exc:
                results["latency"] = {"error": str(exc)[:500]}
        if "memory" not in cfg["skip"]:
            results["memory"] = run_memory(cfg, work)
    finally:
        if not args.keep_topics:  # every topic of this bench run has the prefix in its name
            leftovers = [t for t in asyncio.run(kafka_admin.list_topics(kafka)) if prefix in t]
            asyncio.run(kafka_admin.delete_topics(kafka, leftovers))
    results["machine"]["load_end"] = _load()
    results["duration_s"] = round(time.time() - started, 1)
    results["targets"] = report.evaluate_targets(results)
    text = report.format_report(results)
    print(text)
    payload = orjson.dumps(results, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS) + b"\n"
    (out_dir / "latest.json").write_bytes(payload)
    (out_dir / f"{stamp}.json").write_bytes(payload)
    (out_dir / "latest.txt").write_text(text + "\n")
    _log(f"results: {out_dir / 'latest.json'} and {out_dir / (stamp + '.json')}; took {results['duration_s']:.0f} s")
    shutil.rmtree(work, ignore_errors=True)
    return 0
