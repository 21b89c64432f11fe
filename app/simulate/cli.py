"""`lensbridge simulate`: write scenario files, or publish the scenario live to Kafka."""
from __future__ import annotations

import argparse
import asyncio
import sys
import time

import orjson

from app.kafka.client import client_options
from app.settings import Settings
from app.simulate import ScenarioError, live, load_scenario, write_files


def simulate_command(args: argparse.Namespace, settings: Settings) -> int:
    try:
        scenario = load_scenario(args.scenario)
    except (ScenarioError, OSError) as exc:
        print(f"lensbridge simulate: {exc}", file=sys.stderr)
        return 2
    if args.out:
        # Files default to the most recent past: the scenario ends about now.
        start = args.start if args.start is not None else \
            int(time.time()) - scenario.window_s * scenario.duration_windows
        summary = write_files(scenario, args.out, start, args.seed)
        print(f"simulate: wrote {summary['requests']} requests and {summary['rum']} RUM events "
              f"({summary['verdicts']} expected verdicts) to {args.out}", file=sys.stderr)
        return 0
    try:
        sent = asyncio.run(_publish(scenario, settings, args))
    except KeyboardInterrupt:
        return 130
    print(f"simulate: done, {sent} events published", file=sys.stderr)
    return 0


async def _publish(scenario, settings: Settings, args: argparse.Namespace) -> int:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(**client_options(settings), linger_ms=20)
    await producer.start()
    topics = {"requests": (settings.topic_requests, "service"), "rum": (settings.topic_rum, "cohort")}
    counts = {"requests": 0, "rum": 0}
    last_report = time.monotonic()

    async def send(kind: str, event: dict) -> None:
        nonlocal last_report
        topic, key_field = topics[kind]
        await producer.send(topic, orjson.dumps(event), key=str(event.get(key_field, "")).encode())
        counts[kind] += 1
        if time.monotonic() - last_report >= 10:
            last_report = time.monotonic()
            print(f"simulate: {counts['requests']} requests, {counts['rum']} RUM events sent", file=sys.stderr)

    try:
        print(f"simulate: scenario {scenario.name!r} live at {args.speed}x to {settings.bootstrap_servers}",
              file=sys.stderr)
        return await live(scenario, send, time.time, asyncio.sleep, speed=args.speed, seed=args.seed,
                          start_s=args.start)
    finally:
        await producer.stop()
