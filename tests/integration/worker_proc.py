"""Run `lensbridge worker` as a real subprocess against the test broker."""
from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def lens_env(bootstrap: str, unique: str, data_dir: Path, **overrides: str) -> dict[str, str]:
    """Environment for a worker with its own topics, app id and ports."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LENSBRIDGE_")}
    env.update({
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "LENSBRIDGE_APP_ID": f"lb-{unique}",
        "LENSBRIDGE_TOPIC_REQUESTS": f"requests-{unique}",
        "LENSBRIDGE_TOPIC_RUM": f"rum-{unique}",
        "LENSBRIDGE_TOPIC_SUMMARIES": f"summaries-{unique}",
        "LENSBRIDGE_TOPIC_ALERTS": f"alerts-{unique}",
        "LENSBRIDGE_TOPIC_DLQ": f"dlq-{unique}",
        "LENSBRIDGE_TOPIC_WINDOWS": f"windows-{unique}",
        "LENSBRIDGE_PARTITIONS": "4",
        "LENSBRIDGE_DATA_DIR": str(data_dir),
        "LENSBRIDGE_IDLE_SECONDS": "3",
        "LENSBRIDGE_SESSION_TIMEOUT_SECONDS": "8",
        "LENSBRIDGE_LOG_LEVEL": "info",
    })
    env.update(overrides)
    return env


class WorkerProcess:
    def __init__(self, env: dict[str, str], log_path: Path):
        self.env = dict(env)
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None
        self.metrics_port = 0

    def start(self) -> "WorkerProcess":
        self.metrics_port = free_port()
        self.env["LENSBRIDGE_METRICS_PORT"] = str(self.metrics_port)
        self.env["LENSBRIDGE_WEB_PORT"] = str(free_port())
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "app.cli", "worker"], cwd=ROOT, env=self.env,
                                     stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as resp:
            return resp.read().decode()

    def metric(self, name: str, labels: str = "") -> float:
        """Value of one sample, e.g. metric("lensbridge_events_total", 'lens="sre"'); 0 if absent."""
        wanted = f"{name}{{{labels}}}" if labels else name
        for line in self.metrics().splitlines():
            if line.startswith(wanted + " "):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    def wait_ready(self, timeout_s: float = 90) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.assert_alive()
            try:
                if self.metric("lensbridge_ready") == 1.0:
                    return
            except OSError:
                pass
            time.sleep(0.3)
        raise TimeoutError(f"worker not ready after {timeout_s}s; log tail:\n{self.log_tail()}")

    def wait_for(self, predicate, timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.assert_alive()
            try:
                if predicate():
                    return
            except OSError:  # metrics endpoint not up yet
                pass
            time.sleep(0.3)
        raise TimeoutError(f"timed out waiting for {what}; log tail:\n{self.log_tail()}")

    def assert_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"worker exited with {self.proc.returncode}; log tail:\n{self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL: no flush, no commit, no goodbye."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self, timeout_s: float = 30) -> int | None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode if self.proc else None

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def replay(env: dict[str, str], *args: str, timeout_s: float = 600) -> str:
    done = subprocess.run([sys.executable, "-m", "app.cli", "replay", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout_s)
    assert done.returncode == 0, f"replay failed: {done.stdout}\n{done.stderr}"
    return done.stderr + done.stdout


class KillPoint:
    """True once the worker folded `target` events of `lens` and at least MARGIN_EVENTS more
    since the consumer group's committed offsets last moved.

    Faust commits acked offsets every 10k messages or 2.8 s; a kill right after a commit leaves
    nothing durable beyond it, and the restart then never meets input it already counted (seen
    in 4 of 12 restarts when killing on the event count alone). MARGIN_EVENTS is more than one
    flush (LENSBRIDGE_FLUSH_EVENTS=2000), and flushes are serial, so at least one flush made
    state durable past the commit: the restart must re-read input already counted, and skip it.
    """

    MARGIN_EVENTS = 3000

    def __init__(self, worker: WorkerProcess, env: dict, lens: str, target: float):
        self.worker, self.target, self.lens = worker, target, lens
        self.bootstrap, self.group = env["KAFKA_BOOTSTRAP_SERVERS"], env["LENSBRIDGE_APP_ID"]
        self.topic = env["LENSBRIDGE_TOPIC_REQUESTS" if lens == "sre" else "LENSBRIDGE_TOPIC_RUM"]
        self.committed: int | None = None
        self.folded_since: float = 0.0

    def __call__(self) -> bool:
        committed = asyncio.run(self._committed())  # first: a commit seen late only raises the baseline
        folded = self.worker.metric("lensbridge_events_total", f'lens="{self.lens}"')
        if committed != self.committed:
            self.committed, self.folded_since = committed, folded
            return False
        return folded >= self.target and folded - self.folded_since >= self.MARGIN_EVENTS

    async def _committed(self) -> int:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            offsets = await admin.list_consumer_group_offsets(self.group)
        finally:
            await admin.close()
        return sum(meta.offset for tp, meta in offsets.items() if tp.topic == self.topic and meta.offset >= 0)


def progress(worker: WorkerProcess, lens: str, stage: str) -> dict:
    return {stage: worker.metric("lensbridge_events_total", f'lens="{lens}"'),
            "skipped_as_already_counted": worker.metric("lensbridge_replayed_events_skipped_total",
                                                        f'lens="{lens}"')}


def kill_twice(env: dict, log: Path, lens: str, total_events: int) -> tuple[WorkerProcess, list[dict]]:
    """Start, SIGKILL at ~30% of the backlog folded, twice; returns the third worker (running)
    and what each run had folded and skipped. The killed runs commit no consumer offsets, so
    each restart re-reads input its state already holds and must skip it, every time."""
    env = {**env, "LENSBRIDGE_COMMIT_INTERVAL_SECONDS": "3600", "LENSBRIDGE_COMMIT_EVERY_MESSAGES": "100000000"}
    report = []
    for _ in range(2):
        worker = WorkerProcess(env, log).start()
        worker.wait_for(KillPoint(worker, env, lens, 0.3 * total_events), 240, "progress before the kill")
        report.append(progress(worker, lens, "folded_before_kill"))
        worker.kill()
    return WorkerProcess({**env, "LENSBRIDGE_COMMIT_INTERVAL_SECONDS": "2.8"}, log).start(), report
