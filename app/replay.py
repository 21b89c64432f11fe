"""`lensbridge replay`: publish NDJSON files to the input topics, one message per line.

Bytes go out exactly as in the file (minus the line's `\\n`), unvalidated, so bad lines
reach the topics and exercise the dead-letter path. Blank lines are lines too: they go
out as empty messages. Key: `service` (requests) or `cohort` (RUM) when the line is a
JSON object with that string field, else none. With both files, lines are merged by
`ts` (both files are sorted by time); a line without a readable `ts` goes out as soon
as it is next in its file.

Reading runs in a thread (the files may be stdin pipes): it merges lines and hands
them to the event loop in batches through a bounded queue (back-pressure), flushing
whatever it has before each read that might block, so a slow pipe is not delayed.
"""
from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, NamedTuple, TextIO

import orjson

from app.core.ingest.timeparse import parse_ts

REQUESTS, RUM = "requests", "rum"
KEY_FIELDS = {REQUESTS: "service", RUM: "cohort"}
READ_CHUNK = 1 << 16
BATCH_LINES = 500
MAX_MESSAGE_BYTES = 1_048_576  # the broker's default message.max.bytes, roughly


class Line(NamedTuple):
    source: str  # REQUESTS or RUM
    value: bytes  # the line's exact bytes without its trailing b"\n"
    key: bytes | None
    ts_s: float | None  # None: no readable ts, goes out in file order


def key_and_ts(raw: bytes, key_field: str) -> tuple[bytes | None, float | None]:
    """The Kafka key and event time of one line; (None, None) when it is not a JSON object."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None, None
    if not isinstance(obj, dict):
        return None, None
    key = obj.get(key_field)
    key_bytes = key.encode() if isinstance(key, str) else None
    try:
        ts_s = parse_ts(obj["ts"])
    except (KeyError, ValueError, TypeError):
        ts_s = None
    return key_bytes, ts_s


def iter_lines(read: Callable[[int], bytes], before_read: Callable[[], None] = lambda: None
               ) -> Iterator[bytes]:
    """Lines of a byte stream without their b"\\n" (a last line without one counts too).

    `read(n)` returns what is available (os.read on a pipe), b"" at the end;
    `before_read()` runs before each read, which may block.
    """
    rest = b""
    while True:
        before_read()
        chunk = read(READ_CHUNK)
        if not chunk:
            break
        parts = (rest + chunk).split(b"\n")
        rest = parts.pop()
        yield from parts
    if rest:
        yield rest


def parse_lines(lines: Iterable[bytes], source: str) -> Iterator[Line]:
    key_field = KEY_FIELDS[source]
    for raw in lines:
        key, ts_s = key_and_ts(raw, key_field)
        yield Line(source, raw, key, ts_s)


def interleave(a: Iterable[Line], b: Iterable[Line]) -> Iterator[Line]:
    """Merges two time-sorted line streams by ts; ties go to `a`.

    A line without ts is emitted as soon as it heads its stream (file order kept);
    lazy, so stdin works and memory stays flat.
    """
    it_a, it_b = iter(a), iter(b)
    head_a, head_b = next(it_a, None), next(it_b, None)
    while head_a is not None or head_b is not None:
        if head_a is not None and (head_a.ts_s is None or head_b is None):
            take_a = True
        elif head_b.ts_s is None or head_a is None:
            take_a = False
        else:
            take_a = head_a.ts_s <= head_b.ts_s
        if take_a:
            yield head_a
            head_a = next(it_a, None)
        else:
            yield head_b
            head_b = next(it_b, None)


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


def _open_fd(path: str) -> tuple[int, bool]:
    """(fd, close_it) for a path or "-" (stdin)."""
    if path == "-":
        return sys.stdin.buffer.fileno(), False
    return os.open(path, os.O_RDONLY), True


class _Stopped(Exception):
    pass


def _start_reader(paths: dict[str, str], loop: asyncio.AbstractEventLoop,
                  queue: asyncio.Queue, stop: threading.Event) -> threading.Thread:
    """Thread: merge the files and put batches of Lines on `queue`, then None (or an error).

    Setting `stop` ends the thread at its next put (the sender gave up).
    """

    def put(item) -> None:  # blocks while the queue is full: back-pressure
        future = asyncio.run_coroutine_threadsafe(queue.put(item), loop)
        while True:
            try:
                return future.result(timeout=0.2)
            except TimeoutError:
                if stop.is_set():
                    future.cancel()
                    raise _Stopped from None

    def run() -> None:
        fds = []
        batch: list[Line] = []

        def flush() -> None:
            if batch:
                put(batch.copy())
                batch.clear()

        try:
            streams = []
            for source, path in paths.items():
                fd, close_it = _open_fd(path)
                fds.append((fd, close_it))
                streams.append(parse_lines(iter_lines(lambda n, fd=fd: os.read(fd, n), flush),
                                           source))
            merged = interleave(*streams) if len(streams) == 2 else streams[0]
            for line in merged:
                batch.append(line)
                if len(batch) >= BATCH_LINES:
                    flush()
            flush()
            put(None)
        except _Stopped:
            pass
        except Exception as exc:  # surfaces in the event loop, not lost in the thread
            try:
                put(exc)
            except _Stopped:
                pass
        finally:
            for fd, close_it in fds:
                if close_it:
                    os.close(fd)

    thread = threading.Thread(target=run, name="replay-reader", daemon=True)
    thread.start()
    return thread


async def replay(bootstrap: str, requests_path: str | None, rum_path: str | None,
                 requests_topic: str, rum_topic: str, rate_per_s: float | None,
                 out: TextIO = sys.stderr, security: dict | None = None) -> ReplayTotals:
    """Publishes the files; returns once the broker acknowledged every message (acks=all).
    `security`: aiokafka's security options (app.kafka.client.security_options)."""
    from aiokafka import AIOKafkaProducer

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
    pending: list[tuple[asyncio.Future, str]] = []
    try:
        _start_reader(paths, loop, queue, stop)
        pacer = Pacer(rate_per_s, time.monotonic()) if rate_per_s else None
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
    finally:
        stop.set()
        progress.cancel()
        await producer.stop()
        totals.elapsed_s = time.monotonic() - started
    print(f"replay: done: {totals.line()}", file=out, flush=True)
    return totals


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
    for result, (_, source) in zip(results, pending):
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
