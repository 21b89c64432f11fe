"""Processes under measurement: the real `lensbridge worker`, and baseline programs.

CPU time and peak RSS are read from /proc for the worker, and reported by the baselines
themselves (`baselines/common.py`), in both cases for the one process that does the work,
threads included. Linux only (like the rest of the local tooling).
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import orjson

from app.bench.kafka_admin import ROOT

RESULT_PREFIX = "BENCH_RESULT "


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _status_kb(pid: int | str, field: str) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def peak_rss_bytes(pid: int | str = "self") -> int:
    """VmHWM: the process's peak resident set size so far."""
    return _status_kb(pid, "VmHWM")


def rss_bytes(pid: int | str = "self") -> int:
    return _status_kb(pid, "VmRSS")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the process, all its threads (/proc/<pid>/stat)."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def worker_env(bootstrap: str, unique: str, data_dir: Path, **overrides: str) -> dict[str, str]:
    """Environment for a worker with its own app id, output topics and ports.

    The log level stays the product default (info): at warning or above, Faust's worker
    installs a terminal spinner and sets the root logger to DEBUG, so every debug call in
    Faust and aiokafka builds a log record (several % of CPU; docs/BENCH.md)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LENSBRIDGE_")}
    env.update({
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "LENSBRIDGE_APP_ID": f"lb-{unique}",
        "LENSBRIDGE_TOPIC_REQUESTS": f"{unique}-requests",
        "LENSBRIDGE_TOPIC_RUM": f"{unique}-rum",
        "LENSBRIDGE_TOPIC_SUMMARIES": f"{unique}-summaries",
        "LENSBRIDGE_TOPIC_ALERTS": f"{unique}-alerts",
        "LENSBRIDGE_TOPIC_DLQ": f"{unique}-dlq",
        "LENSBRIDGE_TOPIC_WINDOWS": f"{unique}-windows",
        "LENSBRIDGE_PARTITIONS": "4",
        "LENSBRIDGE_DATA_DIR": str(data_dir),
        "LENSBRIDGE_METRICS_PORT": str(free_port()),
        "LENSBRIDGE_WEB_PORT": str(free_port()),
    })
    env.update(overrides)
    return env


def worker_topics(env: dict[str, str]) -> list[str]:
    """Every topic a worker with this environment writes (outputs and its Faust changelogs)."""
    app_id = env["LENSBRIDGE_APP_ID"]
    outputs = [env[f"LENSBRIDGE_TOPIC_{n}"] for n in ("SUMMARIES", "ALERTS", "DLQ", "WINDOWS", "RUM")]
    return outputs + [f"{app_id}-{t}-changelog" for t in ("sre-state", "cx-state", "joiner-state")] \
        + [f"{app_id}-__assignor-__leader"]


class Worker:
    """`lensbridge worker` as a subprocess, with its Prometheus endpoint."""

    def __init__(self, env: dict[str, str], log_path: Path):
        self.env, self.log_path = env, log_path
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Worker":
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "app.cli", "worker"], cwd=ROOT, env=self.env,
                                     stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        return self

    @property
    def pid(self) -> int:
        return self.proc.pid

    def samples(self) -> dict[str, float]:
        """Every sample on /metrics, by its full name with labels."""
        port = self.env["LENSBRIDGE_METRICS_PORT"]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            text = resp.read().decode()
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                out[name] = float(value)
        return out

    def consumed(self) -> float:
        """Input events the worker has dealt with: folded, late or invalid."""
        total = 0.0
        for name, value in self.samples().items():
            if name.startswith(("lensbridge_events_total", "lensbridge_late_events_total",
                                "lensbridge_invalid_events_total")):
                total += value
        return total

    def wait_ready(self, timeout_s: float = 120) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.assert_alive()
            try:
                if self.samples().get("lensbridge_ready") == 1.0:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"worker not ready after {timeout_s} s; log: {self.log_path}")

    def assert_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"worker exited with {self.proc.returncode}; log tail:\n{self.log_tail()}")

    def stop(self, timeout_s: float = 30) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=30)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def run_baseline(module: str, args: list[str], log_path: Path, timeout_s: float) -> dict:
    """Run `python -m <module> <args>`; returns the JSON it printed after RESULT_PREFIX."""
    with open(log_path, "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", module, *args], cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=log, start_new_session=True)
        try:
            out, _ = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise TimeoutError(f"{module} did not finish in {timeout_s} s; log: {log_path}") from None
    for line in out.decode(errors="replace").splitlines():
        at = line.find(RESULT_PREFIX)  # Faust's worker writes terminal escapes before it
        if at >= 0:
            return orjson.loads(line[at + len(RESULT_PREFIX):])
    tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-30:])
    raise RuntimeError(f"{module} exited with {proc.returncode} and no result; log tail:\n{tail}")
