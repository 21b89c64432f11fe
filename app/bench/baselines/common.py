"""What every baseline shares: arguments, and a meter that times events from the first one."""
from __future__ import annotations

import argparse
import sys
import time

import orjson

RESULT_PREFIX = "BENCH_RESULT "  # procs.RESULT_PREFIX; not imported to keep baselines light


def security() -> dict:
    """aiokafka security options from the environment the bench passed on (app/kafka/client.py)."""
    from app.kafka.client import security_options
    from app.settings import Settings

    return security_options(Settings.from_env())


def faust_security() -> dict:
    """Faust's `broker_credentials` for the same environment ({} for PLAINTEXT)."""
    from app.faust.credentials import faust_credentials
    from app.settings import Settings

    credentials = faust_credentials(Settings.from_env())
    return {"broker_credentials": credentials} if credentials is not None else {}


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--events", type=int, required=True, help="stop after this many events")
    p.add_argument("--group", required=True, help="consumer group / app id (fresh per run)")
    p.add_argument("--window-s", type=int, default=60)
    p.add_argument("--compression", type=int, default=500)
    p.add_argument("--data-dir", default="/tmp")
    return p


def peak_rss_bytes() -> int:
    """VmHWM of this process. Not ru_maxrss: Linux carries that over from the parent
    across fork and exec, so a child of a big bench process would report the parent's."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


class Meter:
    """Counts events; the clock starts at the first `add` (that first batch is not counted)."""

    def __init__(self, target: int):
        self.target = target
        self.count = 0
        self.counted_from = 0
        self.t0 = self.cpu0 = self.t1 = self.cpu1 = None

    def add(self, n: int) -> bool:
        """Record n more events; True once the target is reached."""
        self.count += n
        if self.t0 is None:
            self.t0, self.cpu0, self.counted_from = time.perf_counter(), time.process_time(), self.count
        if self.count >= self.target and self.t1 is None:
            self.t1, self.cpu1 = time.perf_counter(), time.process_time()
            return True
        return False

    @property
    def done(self) -> bool:
        return self.t1 is not None

    def result(self, **extra) -> dict:
        events = self.count - self.counted_from
        elapsed = (self.t1 or time.perf_counter()) - (self.t0 or time.perf_counter())
        cpu = (self.cpu1 or time.process_time()) - (self.cpu0 or time.process_time())
        return {"events": self.count, "timed_events": events, "elapsed_s": elapsed, "cpu_s": cpu,
                "peak_rss_bytes": peak_rss_bytes(), **extra}

    def report(self, **extra) -> None:
        sys.stdout.write(RESULT_PREFIX + orjson.dumps(self.result(**extra)).decode() + "\n")
        sys.stdout.flush()


def run_faust_worker(app) -> None:
    """Run a baseline's Faust app as a worker, quietly (the Faust baselines share this)."""
    import faust  # only the Faust baselines need it

    sys.argv = [sys.argv[0], "worker", "-l", "warning"]
    worker = faust.Worker(app, loglevel="warning", quiet=True, redirect_stdouts=False)
    worker.spinner = None  # else Faust sets the root logger to DEBUG to spin it (costs CPU)
    worker.execute_from_commandline()
