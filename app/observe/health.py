"""What the runners report about progress, read by the metrics server's thread.

Runners call `waiting(name, bool)` when input starts or stops waiting and `durable(name)`
when something they handled became durable; the HTTP handler calls `check()`. A lock
keeps the two threads' views whole; the decision itself is `app.core.health.decide`.
"""
from __future__ import annotations

import threading
import time
from typing import Callable

from app.core.health import Health, SourceProgress, decide


class Progress:
    def __init__(self, stall_s: float = 30.0, clock: Callable[[], float] = time.time):
        self.stall_s, self.clock = stall_s, clock
        self._lock = threading.Lock()
        self._sources: dict[str, SourceProgress] = {}

    def waiting(self, name: str, waiting: bool) -> None:
        now_s = self.clock()
        with self._lock:
            known = self._sources.get(name) or SourceProgress(None, now_s)
            if waiting and known.waiting_since_s is None:
                self._sources[name] = SourceProgress(now_s, known.progress_s)
            elif not waiting:
                self._sources[name] = SourceProgress(None, known.progress_s)

    def durable(self, name: str) -> None:
        now_s = self.clock()
        with self._lock:
            known = self._sources.get(name)
            self._sources[name] = SourceProgress(known.waiting_since_s if known else None, now_s)

    def check(self) -> Health:
        with self._lock:
            sources = dict(self._sources)
        return decide(sources, self.clock(), self.stall_s)
