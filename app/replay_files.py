"""The files side of `lensbridge replay`: NDJSON lines with their Kafka key and event time,
two files merged by `ts`, and the reader thread that feeds the sender.

Reading runs in a thread (the files may be stdin pipes): it merges lines and hands
them to the event loop in batches through a bounded queue (back-pressure), flushing
whatever it has before each read that might block, so a slow pipe is not delayed.
"""
from __future__ import annotations

import asyncio
import os
import sys
import threading
from typing import Callable, Iterable, Iterator, NamedTuple

import orjson

from app.core.ingest.timeparse import parse_ts

REQUESTS, RUM = "requests", "rum"
KEY_FIELDS = {REQUESTS: "service", RUM: "cohort"}
READ_CHUNK = 1 << 16
BATCH_LINES = 500


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


def _open_fd(path: str) -> tuple[int, bool]:
    """(fd, close_it) for a path or "-" (stdin)."""
    if path == "-":
        return sys.stdin.buffer.fileno(), False
    return os.open(path, os.O_RDONLY), True


class _Stopped(Exception):
    """The sender gave up (`stop` was set) while the reader waited to put."""


def start_reader(paths: dict[str, str], loop: asyncio.AbstractEventLoop,
                 queue: asyncio.Queue, stop: threading.Event) -> threading.Thread:
    """Thread: merge the files and put batches of Lines on `queue`, then None (or an error).

    Setting `stop` ends the thread at its next put (the sender gave up).
    """
    put = _blocking_put(loop, queue, stop)
    thread = threading.Thread(target=_read_all, args=(paths, put), name="replay-reader",
                              daemon=True)
    thread.start()
    return thread


def _blocking_put(loop: asyncio.AbstractEventLoop, queue: asyncio.Queue,
                  stop: threading.Event) -> Callable[[object], None]:
    """put(item) for the reader thread: raises _Stopped once `stop` is set."""

    def put(item: object) -> None:  # blocks while the queue is full: back-pressure
        future = asyncio.run_coroutine_threadsafe(queue.put(item), loop)
        while True:
            try:
                return future.result(timeout=0.2)
            except TimeoutError:
                if stop.is_set():
                    future.cancel()
                    raise _Stopped from None

    return put


class _Batches:
    """Lines gathered into batches of BATCH_LINES; `flush()` puts what there is."""

    def __init__(self, put: Callable[[object], None]) -> None:
        self._put = put
        self._lines: list[Line] = []

    def add(self, line: Line) -> None:
        self._lines.append(line)
        if len(self._lines) >= BATCH_LINES:
            self.flush()

    def flush(self) -> None:
        if self._lines:
            self._put(self._lines.copy())
            self._lines.clear()


def _read_all(paths: dict[str, str], put: Callable[[object], None]) -> None:
    """The reader thread's body: every line in batches, then None; an error instead."""
    fds: list[tuple[int, bool]] = []
    batches = _Batches(put)
    try:
        for line in _merged_lines(paths, fds, batches.flush):
            batches.add(line)
        batches.flush()
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


def _merged_lines(paths: dict[str, str], fds: list[tuple[int, bool]],
                  before_read: Callable[[], None]) -> Iterator[Line]:
    """Opens the files (each noted in `fds`, for the caller to close) and returns their
    lines, merged by ts when there are two."""
    streams = []
    for source, path in paths.items():
        fd, close_it = _open_fd(path)
        fds.append((fd, close_it))
        streams.append(parse_lines(iter_lines(lambda n, fd=fd: os.read(fd, n), before_read),
                                   source))
    return interleave(*streams) if len(streams) == 2 else streams[0]
