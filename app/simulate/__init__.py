"""`lensbridge simulate`: synthetic request and RUM traffic with scripted incidents.

    scenario = load_scenario("scenarios/demo.json")
    write_files(scenario, "out/", start_s=1_700_000_000, seed=7)   # files to replay
    await live(scenario, send, time.time, asyncio.sleep)            # paced, at the current time

Scenario format and the meaning of every file: docs/SCENARIOS.md.
"""
from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Awaitable, Callable, Iterable

import orjson

from app.simulate.generate import aligned_start, generate, generate_lists, merge_sorted
from app.simulate.scenario import Scenario, ScenarioError
from app.simulate.scenario_load import load_scenario, parse_scenario
from app.simulate.truth import AVAILABILITY_ERROR_RATIO, SLICE_S, cx_truth, expected_verdicts, sre_truth

__all__ = ["Scenario", "ScenarioError", "aligned_start", "compute_truth", "expected_verdicts",
           "generate", "generate_lists", "live", "load_scenario", "parse_scenario",
           "write_files"]

_CHUNK = 10_000  # events per write: bounded memory for the encoded bytes


def compute_truth(scenario: Scenario, requests: Iterable[dict], rum: Iterable[dict],
                  start_s: int, seed: int | None = None) -> dict:
    """truth.json: exact per-window numbers per service (SRE) and per cohort (CX)."""
    return {"schema_version": 1, "scenario": scenario.name, "seed": seed, "start_s": start_s,
            "window_s": scenario.window_s, "slice_s": SLICE_S,
            "availability_error_ratio": AVAILABILITY_ERROR_RATIO,
            "error_statuses": ">=500", "quantiles": "exact, numpy 'linear' interpolation",
            "sre": sre_truth(requests, scenario.window_s),
            "cx": cx_truth(rum, scenario.window_s)}


def write_files(scenario: Scenario, out_dir: str | Path, start_s: int, seed: int) -> dict:
    """Write requests.ndjson, rum.ndjson, expected.json and truth.json; return a summary."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    start = aligned_start(scenario, start_s)
    requests, rum = generate_lists(scenario, start, seed)
    paths = {name: out / name for name in
             ("requests.ndjson", "rum.ndjson", "expected.json", "truth.json")}
    _write_ndjson(paths["requests.ndjson"], requests)
    _write_ndjson(paths["rum.ndjson"], rum)
    expected = expected_verdicts(scenario, start, seed)
    _write_json(paths["expected.json"], expected)
    _write_json(paths["truth.json"], compute_truth(scenario, requests, rum, start, seed))
    return {"scenario": scenario.name, "seed": seed, "start_s": start,
            "end_s": expected["end_s"], "requests": len(requests), "rum": len(rum),
            "events": len(requests) + len(rum), "verdicts": len(expected["verdicts"]),
            "files": {name: str(p) for name, p in paths.items()}}


def _write_ndjson(path: Path, events: list[dict]) -> None:
    with open(path, "wb") as fh:
        for i in range(0, len(events), _CHUNK):
            fh.write(b"".join(orjson.dumps(e) + b"\n" for e in events[i:i + _CHUNK]))


def _write_json(path: Path, obj: dict) -> None:
    path.write_bytes(orjson.dumps(obj, option=orjson.OPT_INDENT_2) + b"\n")


async def live(scenario: Scenario, send: Callable[[str, dict], Awaitable[None]],
               now_fn: Callable[[], float], sleep_fn: Callable[[float], Awaitable[None]],
               speed: float = 1.0, seed: int = 0, start_s: float | None = None,
               min_sleep_s: float = 0.05) -> int:
    """Publish the scenario paced to the clock: `await send("requests"|"rum", event)`.

    Without start_s the scenario runs at the current time: it starts at the window that
    holds now_fn(), so the events of that window's elapsed part go out at once, and each
    later event when the clock reaches its ts. With start_s the scenario keeps its own
    timestamps and only the pacing follows the clock. speed > 1 compresses the pacing;
    event timestamps are not changed, so at speed > 1 they run ahead of the clock.
    Sleeps shorter than min_sleep_s are skipped (events may go out that much early).
    Returns the number of events sent.
    """
    if speed <= 0:
        raise ValueError(f"speed must be > 0, got {speed}")
    wall0 = now_fn()
    start = aligned_start(scenario, wall0 if start_s is None else start_s)
    anchor = wall0 if start_s is None else start  # the event time that maps onto wall0
    # Generating a large scenario takes seconds: keep the event loop responsive meanwhile.
    requests, rum = await asyncio.to_thread(generate_lists, scenario, start, seed)
    stream = merge_sorted(requests, rum)
    sent, now = 0, wall0
    for topic, event in stream:
        due = wall0 + (event["ts"] - anchor) / speed
        if due - now > min_sleep_s:
            now = now_fn()  # `now` may be stale after many sends: look before sleeping
            if due - now > min_sleep_s:
                await sleep_fn(due - now)
                now = now_fn()
        await send(topic, event)
        sent += 1
    return sent
