"""`lensbridge replay`: publish NDJSON files to the input topics, one message per line.

Bytes go out exactly as in the file (minus the line's `\\n`), unvalidated, so bad lines
reach the topics and exercise the dead-letter path. Blank lines are lines too: they go
out as empty messages. Key: `service` (requests) or `cohort` (RUM) when the line is a
JSON object with that string field, else none. With both files, lines are merged by
`ts` (both files are sorted by time); a line without a readable `ts` goes out as soon
as it is next in its file.

Reading the files (a thread, lines merged by ts) is app/replay_files.py; this module
sends them: paced, counted, and acknowledged by the broker before `replay` returns.
"""
from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

from app.replay_files import REQUESTS, RUM, Line, start_reader

if TYPE_CHECKING:
    from aiokafka import AIOKafkaProducer

MAX_MESSAGE_BYTES = 1_048_576  # the broker's default message.max.bytes, roughly


class Pacer:
    """Spaces sends to `rate_per_s`: returns how long to sleep before the next one."""

    def __init__(self, rate_per_s: float, now_s: float) -> None:
        self.interval_s = 1.0 / rate_per_s
        self.next_s = now_s

    def delay_s(self, now_s: float) -> float:
        # After a stall (a slow pipe) catch up with at most one second's worth of sends.
        self.next_s = max(self.next_s, now_s - 1.0)
        wait_s = max(0.0, self.next_s - now_s)
        self.next_s += self.interval_s
        return wait_s


@dataclass
class ReplayTotals:
    requests: int = 0
    rum: int = 0
    keyed: int = 0
    without_ts: int = 0
    failed: int = 0
    elapsed_s: float = 0.0

    @property
    def sent(self) -> int:
        return self.requests + self.rum

    def line(self) -> str:
        rate = self.sent / self.elapsed_s if self.elapsed_s > 0 else 0.0
        return (f"{self.sent} messages (requests {self.requests}, rum {self.rum}), "
                f"{self.keyed} keyed, {self.without_ts} without ts, {self.failed} failed, "
                f"{self.elapsed_s:.1f} s, {rate:.0f} msg/s")


async def replay(bootstrap: str, requests_path: str | None, rum_path: str | None,
                 requests_topic: str, rum_topic: str, rate_per_s: float | None,
                 out: TextIO = sys.stderr, security: dict | None = None) -> ReplayTotals:
    """Publishes the files; returns once the broker acknowledged every message (acks=all).
    `security`: aiokafka's security options (app.kafka.client.security_options)."""
    from aiokafka import AIOKafkaProducer

    paths = _checked_paths(requests_path, rum_path, rate_per_s)
    topics = {REQUESTS: requests_topic, RUM: rum_topic}
    totals = ReplayTotals()
    started = time.monotonic()

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5,
                                max_request_size=MAX_MESSAGE_BYTES, **(security or {}))
    await producer.start()
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue(maxsize=8)
    stop = threading.Event()
    progress = loop.create_task(_progress(totals, started, out))
    try:
        start_reader(paths, loop, queue, stop)
        pacer = Pacer(rate_per_s, time.monotonic()) if rate_per_s else None
        await _send_all(producer, queue, topics, pacer, totals, out)
    finally:
        stop.set()
        progress.cancel()
        await producer.stop()
        totals.elapsed_s = time.monotonic() - started
    print(f"replay: done: {totals.line()}", file=out, flush=True)
    return totals


def _checked_paths(requests_path: str | None, rum_path: str | None,
                   rate_per_s: float | None) -> dict[str, str]:
    """source -> path of the files to replay; raises for a request that cannot run."""
    paths = {s: p for s, p in ((REQUESTS, requests_path), (RUM, rum_path)) if p}
    if not paths:
        raise ValueError("replay needs --requests FILE and/or --rum FILE")
    if list(paths.values()).count("-") > 1:
        raise ValueError("only one of --requests / --rum can read standard input (-)")
    for path in paths.values():
        if path != "-" and (not os.path.exists(path) or os.path.isdir(path)):
            raise FileNotFoundError(f"replay: no such file: {path}")
    if rate_per_s is not None and rate_per_s <= 0:
        raise ValueError(f"--rate must be > 0 events per second, got {rate_per_s}")
    return paths


async def _send_all(producer: AIOKafkaProducer, queue: asyncio.Queue, topics: dict[str, str],
                    pacer: Pacer | None, totals: ReplayTotals, out: TextIO) -> None:
    """Sends the reader's batches until its None (raises its error); returns once every
    send is settled."""
    pending: list[tuple[asyncio.Future, str]] = []
    while (batch := await queue.get()) is not None:
        if isinstance(batch, BaseException):
            raise batch
        for line in batch:
            if pacer and (wait_s := pacer.delay_s(time.monotonic())) > 0.001:
                await asyncio.sleep(wait_s)
            try:
                future = await producer.send(topics[line.source], line.value, key=line.key)
            except Exception as exc:  # e.g. a line larger than the broker accepts
                _fail(totals, out, line, exc)
                continue
            pending.append((future, line.source))
            _count(totals, line)
        if len(pending) > 10_000:
            pending = await _settle(pending, totals, out)
    await _settle(pending, totals, out)


def _count(totals: ReplayTotals, line: Line) -> None:
    if line.source == REQUESTS:
        totals.requests += 1
    else:
        totals.rum += 1
    totals.keyed += line.key is not None
    totals.without_ts += line.ts_s is None


def _fail(totals: ReplayTotals, out: TextIO, line: Line, exc: BaseException) -> None:
    totals.failed += 1
    if totals.failed <= 10:
        print(f"replay: could not send a {line.source} line of {len(line.value)} bytes: "
              f"{type(exc).__name__}: {exc}", file=out, flush=True)


async def _settle(pending: list[tuple[asyncio.Future, str]], totals: ReplayTotals,
                  out: TextIO) -> list:
    """Awaits every send; a failed delivery moves its message from sent to failed."""
    results = await asyncio.gather(*(f for f, _ in pending), return_exceptions=True)
    for result, (_, source) in zip(results, pending, strict=True):
        if isinstance(result, BaseException):
            totals.failed += 1
            if source == REQUESTS:
                totals.requests -= 1
            else:
                totals.rum -= 1
            if totals.failed <= 10:
                print(f"replay: delivery failed: {type(result).__name__}: {result}",
                      file=out, flush=True)
    return []


async def _progress(totals: ReplayTotals, started: float, out: TextIO) -> None:
    last = -1
    while True:
        await asyncio.sleep(1.0)
        if totals.sent != last:
            last = totals.sent
            totals.elapsed_s = time.monotonic() - started
            print(f"replay: {totals.line()}", file=out, flush=True)
