"""End-to-end alert latency: the demo scenario published live into a real worker.

Method (docs/BENCH.md says why):

- `scenarios/demo.json` is published paced to the clock (`app.simulate.live`) at `speed`x,
  with timestamps that end before now, into a worker with the `make run` settings
  (10 s windows, 2 s grace, 5 s idle advance). Keys as `lensbridge replay` sets them.
- The pacing maps event time onto wall time: wall(ts) = wall0 + (ts - start) / speed.
- The alert about window w is decidable once both lenses are complete through
  D = w + (1 + LENSBRIDGE_CORRELATION_LAG_WINDOWS) * window_s (the correlator waits one
  window for the other lens: docs/DETECTION.md); a lens is complete through D once every
  partition's watermark (newest ts - grace) passed D, i.e. once an event with
  ts >= D + grace was published: at wall(D + grace). That is "the window closed".
- latency = the alert's Kafka timestamp - wall(D + grace).  Also reported:
  joiner latency = alert timestamp - the moment the last (lens, partition) watermark record
  reaching D was written to the summaries topic (the joiner's share alone), and the latency
  from the incident window's own close (which includes the one-window correlation wait).
- Alerts about windows that only close after the input stopped (the end-of-stream idle
  rule) are listed apart: their close is a wall-clock rule, not data.
"""
from __future__ import annotations

import asyncio
import time
from pathlib import Path

import orjson
from aiokafka import AIOKafkaProducer

from app.bench import kafka_admin
from app.bench.procs import Worker, worker_env, worker_topics
from app.bench.stats import percentile
from app.simulate import aligned_start, expected_verdicts, live, load_scenario

DEMO = kafka_admin.ROOT / "scenarios" / "demo.json"
SETTINGS = {"LENSBRIDGE_WINDOW_SECONDS": "10", "LENSBRIDGE_GRACE_SECONDS": "2", "LENSBRIDGE_IDLE_SECONDS": "5",
            "LENSBRIDGE_AVAILABILITY_SLICE_SECONDS": "5"}
KEY_FIELDS = {"requests": "service", "rum": "cohort"}


async def _publish(kafka: dict, topics: dict[str, str], scenario, speed: float, start_s: int) -> dict:
    producer = AIOKafkaProducer(**kafka, linger_ms=5, acks=1)
    await producer.start()
    first_call: list[float] = []

    def clock() -> float:
        now = time.time()
        if not first_call:
            first_call.append(now)
        return now

    async def send(source: str, event: dict) -> None:
        key = event.get(KEY_FIELDS[source])
        await producer.send(topics[source], orjson.dumps(event), key=key.encode() if isinstance(key, str) else None)

    try:
        sent = await live(scenario, send, clock, asyncio.sleep, speed=speed, seed=1, start_s=start_s)
        await producer.flush()
    finally:
        await producer.stop()
    return {"wall0": first_call[0], "sent": sent, "ended": time.time()}


def alert_latencies(alerts: list[tuple[int, dict]], watermarks: list[tuple[int, dict]], *, wall0: float,
                    start_s: int, speed: float, window_s: int, grace_s: float, lag_windows: int,
                    last_ts_s: float) -> list[dict]:
    """One row per alert message: its window, when it became decidable, and the latencies.

    `alerts` and `watermarks` are (Kafka timestamp ms, value) pairs. Pure: unit-tested.
    """
    def wall(ts_s: float) -> float:
        return wall0 + (ts_s - start_s) / speed

    firsts: dict[tuple[str, int], list[tuple[float, float]]] = {}
    for ts_ms, record in watermarks:
        if record.get("watermark") is not None:
            firsts.setdefault((record["lens"], record["partition"]), []).append((record["watermark"], ts_ms / 1000))
    rows = []
    for ts_ms, alert in alerts:
        w = alert["window_start"]
        decided_through = w + (1 + lag_windows) * window_s
        reached = []
        for marks in firsts.values():
            times = [t for wm, t in marks if wm >= decided_through]
            reached.append(min(times) if times else None)
        wm_time = max(reached) if reached and None not in reached else None
        at = ts_ms / 1000
        rows.append({
            "alert_id": alert["alert_id"], "kind": alert["kind"], "status": alert["status"],
            "update_seq": alert["update_seq"], "window_start": w, "decidable_through": decided_through,
            "after_input_end": decided_through + grace_s > last_ts_s,
            "latency_s": at - wall(decided_through + grace_s),
            "joiner_latency_s": None if wm_time is None else at - wm_time,
            "from_incident_window_close_s": at - wall(w + window_s + grace_s),
        })
    return rows


def summarize_latencies(rows: list[dict]) -> dict:
    data = [r for r in rows if not r["after_input_end"]]
    firsts = [r for r in data if r["status"] == "firing" and r["update_seq"] == 0]

    def pct(values: list[float]) -> dict:
        return {"n": len(values), "p50": percentile(values, 0.5), "p99": percentile(values, 0.99),
                "max": max(values) if values else None}

    return {
        "all_messages": pct([r["latency_s"] for r in data]),
        "first_firing": pct([r["latency_s"] for r in firsts]),
        "joiner_only": pct([r["joiner_latency_s"] for r in data if r["joiner_latency_s"] is not None]),
        "from_incident_window_close": pct([r["from_incident_window_close_s"] for r in firsts]),
        "after_input_end": [{k: r[k] for k in ("kind", "status", "window_start", "latency_s")}
                            for r in rows if r["after_input_end"]],
    }


def measure_latency(kafka: dict, unique: str, work_dir: Path, speed: float, keep_topics: bool = False) -> dict:
    scenario = load_scenario(str(DEMO))
    window_s = scenario.window_s
    env = worker_env(kafka["bootstrap_servers"], unique, work_dir / unique,
                     **{**SETTINGS, "LENSBRIDGE_WINDOW_SECONDS": str(window_s)})
    grace_s, lag = float(env["LENSBRIDGE_GRACE_SECONDS"]), 1
    span_s = scenario.duration_windows * window_s
    start = aligned_start(scenario, time.time() - span_s - 3 * window_s)
    worker = Worker(env, work_dir / f"{unique}.log").start()
    try:
        worker.wait_ready()
        topics = {"requests": env["LENSBRIDGE_TOPIC_REQUESTS"], "rum": env["LENSBRIDGE_TOPIC_RUM"]}
        published = asyncio.run(_publish(kafka, topics, scenario, speed, start))
        # The last windows close by the end-of-stream idle rule: idle_s, then event time follows the clock.
        tail_s = float(env["LENSBRIDGE_IDLE_SECONDS"]) + 3 * window_s + grace_s + 5
        deadline = time.monotonic() + tail_s
        while time.monotonic() < deadline:
            worker.assert_alive()
            time.sleep(1)
    finally:
        worker.stop()
    alerts = [(r.timestamp, orjson.loads(r.value))
              for r in asyncio.run(kafka_admin.read_all(kafka, env["LENSBRIDGE_TOPIC_ALERTS"]))]
    watermarks = []
    for r in asyncio.run(kafka_admin.read_all(kafka, env["LENSBRIDGE_TOPIC_SUMMARIES"], timeout_s=120)):
        value = orjson.loads(r.value)
        if value.get("type") == "watermark":
            watermarks.append((r.timestamp, value))
    if not keep_topics:
        asyncio.run(kafka_admin.delete_topics(kafka, worker_topics(env) + list(topics.values())))
    alerts.sort(key=lambda pair: pair[0])
    rows = alert_latencies(alerts, watermarks, wall0=published["wall0"], start_s=start, speed=speed,
                           window_s=window_s, grace_s=grace_s, lag_windows=lag, last_ts_s=start + span_s)
    expected = expected_verdicts(scenario, start, 1)["verdicts"]
    kinds_found = {(a["kind"], a["subject"]) for _, a in alerts if a["status"] == "firing"}
    return {
        "scenario": "demo", "speed": speed, "events": published["sent"], "window_s": window_s,
        "grace_s": grace_s, "idle_s": float(env["LENSBRIDGE_IDLE_SECONDS"]), "correlation_lag_windows": lag,
        "publish_s": round(published["ended"] - published["wall0"], 1),
        "expected_verdicts": len(expected),
        "expected_found": sum(1 for v in expected if (v["kind"], v["subject"]) in kinds_found),
        "alert_messages": len(alerts), "summary": summarize_latencies(rows), "alerts": rows,
    }
