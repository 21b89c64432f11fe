"""One run of one row: a fresh consumer group reads a bench topic from the beginning.

lensbridge rows run the real `lensbridge worker` and watch its /metrics: the clock starts
at the first scrape that shows consumed input and stops at the scrape that shows all of it
(the events seen at the first scrape are not counted; scrapes are every `POLL_S` once the
end is less than ~2 s away at the rate so far, every `SLOW_POLL_S` before). Baseline
rows time themselves the same way (from their first event). Either way the CPU seconds
are those of the one worker process (all its threads) over the timed span, and the peak
RSS is the process's high-water mark (VmHWM) at the end.
"""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from app.bench import kafka_admin
from app.bench.procs import Worker, cpu_seconds, peak_rss_bytes, rss_bytes, run_baseline, worker_env, worker_topics

POLL_S = 0.05  # near the end; a scrape costs the worker ~2 ms of CPU, so far from it we poll less
SLOW_POLL_S = 0.5


@dataclass
class RowSpec:
    key: str
    label: str
    kind: str  # "lensbridge" or a baseline module
    framing: str  # single, array, ndjson
    events_cap: int | None = None  # stop after this many events (slow rows)
    passes: int = 1  # the ceiling re-reads its topic to run long enough to time


@dataclass
class RunResult:
    events: int
    elapsed_s: float
    cpu_s: float
    peak_rss_bytes: int
    changelog_bytes: int | None = None
    changelog_records: int | None = None
    extra: dict = field(default_factory=dict)

    @property
    def events_per_s(self) -> float:
        return self.events / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def cpu_s_per_m_events(self) -> float:
        return self.cpu_s / self.events * 1e6 if self.events else 0.0

    def to_json(self) -> dict:
        return {"events": self.events, "elapsed_s": round(self.elapsed_s, 4), "cpu_s": round(self.cpu_s, 4),
                "events_per_s": round(self.events_per_s, 1),
                "cpu_s_per_m_events": round(self.cpu_s_per_m_events, 2),
                "peak_rss_bytes": self.peak_rss_bytes, "changelog_bytes": self.changelog_bytes,
                "changelog_records": self.changelog_records, **self.extra}


class Profiler:
    """py-spy recording a process until stopped (raw collapsed stacks)."""

    def __init__(self, pid: int, out_path: Path, rate_hz: int = 100):
        self.out_path = out_path
        self.proc = subprocess.Popen(["py-spy", "record", "--pid", str(pid), "--format", "raw", "--rate",
                                      str(rate_hz), "--nonblocking", "--gil", "--output", str(out_path)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     env={**os.environ, "PATH": _venv_path()})

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def _venv_path() -> str:
    return f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"


def run_lensbridge(kafka: dict, topic: str, events: int, unique: str, work_dir: Path,
                   timeout_s: float, profile_to: Path | None = None, keep_topics: bool = False) -> RunResult:
    env = worker_env(kafka["bootstrap_servers"], unique, work_dir / unique, LENSBRIDGE_TOPIC_REQUESTS=topic)
    worker = Worker(env, work_dir / f"{unique}.log").start()
    profiler = None
    try:
        worker.wait_ready()
        if profile_to is not None:
            profiler = Profiler(worker.pid, profile_to)
        t0 = n0 = cpu0 = None
        rss_samples: list[int] = []
        deadline = time.monotonic() + timeout_s
        while True:
            worker.assert_alive()
            seen = worker.consumed()
            now, cpu = time.perf_counter(), cpu_seconds(worker.pid)
            if seen > 0 and t0 is None:
                t0, n0, cpu0 = now, seen, cpu
            if t0 is not None:
                rss_samples.append(rss_bytes(worker.pid))
            if seen >= events:
                t1, cpu1 = now, cpu
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"lensbridge consumed {seen} of {events} events in {timeout_s} s; "
                                   f"log: {worker.log_path}")
            time.sleep(_next_poll_s(t0, n0, now, seen, events))
        if profiler:
            profiler.stop()
        peak = peak_rss_bytes(worker.pid)
    finally:
        if profiler:
            profiler.stop()
        worker.stop()
    changelogs = [t for t in worker_topics(env) if t.endswith("-changelog")]
    cl_bytes = _disk_bytes(changelogs)
    summaries = kafka_admin.topic_disk_bytes(env["LENSBRIDGE_TOPIC_SUMMARIES"])
    if not keep_topics:
        asyncio.run(kafka_admin.delete_topics(kafka, worker_topics(env)))
    return RunResult(int(events - n0), t1 - t0, cpu1 - cpu0, peak, cl_bytes,
                     extra={"rss_first_bytes": rss_samples[0], "rss_last_bytes": rss_samples[-1],
                            "rss_max_sampled_bytes": max(rss_samples), "summaries_bytes": summaries,
                            "events_at_start": int(n0)})


def _next_poll_s(t0: float | None, n0: float | None, now: float, seen: float, events: int) -> float:
    if t0 is None or now <= t0 or seen <= n0:
        return POLL_S
    rate = (seen - n0) / (now - t0)
    return SLOW_POLL_S if (events - seen) / rate > 2.0 else POLL_S


def run_baseline_row(spec: RowSpec, kafka: dict, topic: str, events: int, unique: str,
                     work_dir: Path, timeout_s: float, compression: int, keep_topics: bool = False) -> RunResult:
    args = ["--bootstrap", kafka["bootstrap_servers"], "--topic", topic, "--events", str(events), "--group", unique,
            "--data-dir", str(work_dir / unique), "--compression", str(compression)]
    if spec.kind.endswith("aiokafka_ceiling"):
        args += ["--framing", spec.framing, "--passes", str(spec.passes)]
    elif spec.kind.endswith("quix_peer"):
        args += ["--framing", spec.framing]
    out = run_baseline(spec.kind, args, work_dir / f"{unique}.log", timeout_s)
    changelogs: list[str] = []
    if out.get("changelog_topic"):
        changelogs = [out["changelog_topic"]]
    elif out.get("changelog_prefix"):
        changelogs = [t for t in asyncio.run(kafka_admin.list_topics(kafka))
                      if t.startswith(out["changelog_prefix"])]
    cl_bytes = _disk_bytes(changelogs) if changelogs else None
    if not keep_topics:
        doomed = [t for t in asyncio.run(kafka_admin.list_topics(kafka)) if unique in t]
        asyncio.run(kafka_admin.delete_topics(kafka, doomed))
    extra = {k: v for k, v in out.items() if k not in ("events", "timed_events", "elapsed_s", "cpu_s",
                                                         "peak_rss_bytes", "changelog_topic", "changelog_prefix")}
    return RunResult(out["timed_events"], out["elapsed_s"], out["cpu_s"], out["peak_rss_bytes"], cl_bytes,
                     extra=extra)


def _disk_bytes(topics: list[str]) -> int | None:
    sizes = [kafka_admin.topic_disk_bytes(t) for t in topics]
    known = [s for s in sizes if s is not None]
    return sum(known) if known else None

