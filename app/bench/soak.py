"""Memory over a long run: a worker fed the two-hour scenario live, its RSS sampled.

`python -m app.bench.soak --minutes 30` starts the local broker's worker with default
settings, publishes `scenarios/two_hours.json` paced so that it lasts `--minutes`
(timestamps end just before now, as in the latency bench), and samples the worker's RSS
(`/proc/<pid>/status` VmRSS) and its open window-subjects every `--every-s` seconds. It
prints one JSON line and writes it to `bench/results/soak.json`: the samples, the median RSS
of the first and last fifth of the run after a warm-up, and the least-squares slope of RSS
over the run's second half. Flat memory: the last fifth within a few percent of the first,
and a slope that would not double the RSS in a day.
"""
from __future__ import annotations

import argparse
import asyncio
import threading
import time
import uuid
from pathlib import Path

import orjson

from app.bench import kafka_admin
from app.bench.latency import _publish
from app.bench.procs import Worker, rss_bytes, worker_env, worker_topics
from app.bench.stats import percentile
from app.kafka.client import client_options
from app.settings import Settings
from app.simulate import aligned_start, load_scenario

SCENARIO = kafka_admin.ROOT / "scenarios" / "two_hours.json"


def slope_bytes_per_hour(samples: list[tuple[float, int]]) -> float:
    """Least-squares slope of RSS against time, in bytes per hour."""
    n = len(samples)
    if n < 2:
        return 0.0
    mean_t = sum(t for t, _ in samples) / n
    mean_r = sum(r for _, r in samples) / n
    var = sum((t - mean_t) ** 2 for t, _ in samples)
    if var == 0:
        return 0.0
    return sum((t - mean_t) * (r - mean_r) for t, r in samples) / var * 3600.0


def summarize(samples: list[tuple[float, int]], warmup_s: float) -> dict:
    """First and last fifth (after the warm-up), growth between them, second-half slope."""
    steady = [(t, r) for t, r in samples if t >= warmup_s]
    if len(steady) < 5:
        raise ValueError(f"only {len(steady)} samples after the warm-up: run longer")
    fifth = max(1, len(steady) // 5)
    first = percentile([r for _, r in steady[:fifth]], 0.5)
    last = percentile([r for _, r in steady[-fifth:]], 0.5)
    half = steady[len(steady) // 2:]
    return {"rss_first_fifth_bytes": first, "rss_last_fifth_bytes": last,
            "growth_ratio": last / first, "rss_max_bytes": max(r for _, r in steady),
            "slope_second_half_bytes_per_hour": slope_bytes_per_hour(half)}


def soak(kafka: dict, minutes: float, every_s: float, work_dir: Path) -> dict:
    scenario = load_scenario(str(SCENARIO))
    span_s = scenario.duration_windows * scenario.window_s
    speed = span_s / (minutes * 60.0)
    unique = f"soak-{uuid.uuid4().hex[:8]}"
    env = worker_env(kafka["bootstrap_servers"], unique, work_dir / unique)
    start = aligned_start(scenario, time.time() - span_s - 3 * scenario.window_s)
    worker = Worker(env, work_dir / f"{unique}.log").start()
    samples: list[tuple[float, int]] = []
    slots: list[tuple[float, float]] = []
    done = threading.Event()

    def sample(t0: float) -> None:
        while not done.wait(every_s):
            elapsed = time.monotonic() - t0
            try:
                samples.append((elapsed, rss_bytes(worker.pid)))
                metrics = worker.samples()
            except OSError:  # the worker died: the main thread's assert_alive says why
                return
            slots.append((elapsed, sum(v for k, v in metrics.items() if k.startswith("lensbridge_open_window_subjects"))))

    try:
        worker.wait_ready()
        t0 = time.monotonic()
        sampler = threading.Thread(target=sample, args=(t0,), daemon=True)
        sampler.start()
        topics = {"requests": env["LENSBRIDGE_TOPIC_REQUESTS"], "rum": env["LENSBRIDGE_TOPIC_RUM"]}
        published = asyncio.run(_publish(kafka, topics, scenario, speed, start))
        done.set()
        sampler.join()
        worker.assert_alive()
        events = worker.consumed()
    finally:
        done.set()
        worker.stop()
        asyncio.run(kafka_admin.delete_topics(kafka, worker_topics(env)))
    return {"scenario": SCENARIO.name, "minutes": minutes, "speed": round(speed, 3),
            "events_published": published["sent"], "events_consumed": events, "every_s": every_s,
            **summarize(samples, warmup_s=min(300.0, minutes * 60 / 5)),
            "open_window_subjects_max": max((s for _, s in slots), default=None),
            "samples": [[round(t, 1), r] for t, r in samples]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--every-s", type=float, default=30.0)
    parser.add_argument("--out", default="bench/results/soak.json")
    args = parser.parse_args()
    kafka = client_options(Settings.from_env())
    result = soak(kafka, args.minutes, args.every_s, Path("/tmp"))
    text = orjson.dumps(result).decode()
    Path(args.out).write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
