"""Several `lensbridge worker` processes in one consumer group, as a real deployment runs them.

Every worker gets the same environment (same app id, topics and partitions) but its own
metrics and web ports, data directory and log file. Counters of a worker that died are
kept (its last scrape), so sums over the cluster's whole life stay meaningful.
"""
from __future__ import annotations

import re
import time
from datetime import datetime
from pathlib import Path

from tests.integration.worker_proc import WorkerProcess

# Our lines before Faust starts: "2026-01-01 12:00:00,123 INFO ..."; Faust's: "[2026-01-01 12:00:00,123] [pid] ..."
LOG_TS = re.compile(r"^\[?(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})[\] ]")
RESTORED = re.compile(r"(\w+): partition (\d+) restored at offset (-?\d+)")


def log_time(line: str) -> float | None:
    """Epoch seconds of a worker log line (`%(asctime)s`, local time, ms), None if it has none."""
    match = LOG_TS.match(line)
    if not match:
        return None
    return datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()


class Cluster:
    def __init__(self, env: dict[str, str], directory: Path, name: str = "w"):
        self.env, self.dir, self.name = dict(env), directory, name
        self.workers: list[WorkerProcess] = []
        self.last_scrape: dict[int, dict[str, float]] = {}  # id(worker) -> sample -> value
        self.retired: dict[str, float] = {}  # samples summed over earlier runs of restarted workers

    def start(self, **overrides: str) -> WorkerProcess:
        """One more worker in the group (its data dir and log are new, like a fresh pod)."""
        i = len(self.workers)
        env = {**self.env, "LENSBRIDGE_DATA_DIR": str(self.dir / f"{self.name}{i}-data"), **overrides}
        worker = WorkerProcess(env, self.dir / f"{self.name}{i}.log").start()
        self.workers.append(worker)
        return worker

    def restart(self, worker: WorkerProcess) -> WorkerProcess:
        """The same worker again (same data dir and log), e.g. after a rolling-restart stop."""
        assert worker.proc is not None and worker.proc.poll() is not None, "stop it first"
        for sample, value in self.last_scrape.pop(id(worker), {}).items():
            self.retired[sample] = self.retired.get(sample, 0.0) + value
        worker.start()
        return worker

    def alive(self) -> list[WorkerProcess]:
        return [w for w in self.workers if w.proc is not None and w.proc.poll() is None]

    # -- metrics ---------------------------------------------------------------------------------
    def scrape(self, worker: WorkerProcess) -> dict[str, float]:
        samples = {}
        for line in worker.metrics().splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                samples[name] = float(value)
        return samples

    def total(self, sample: str) -> float:
        """Sum of one sample (e.g. 'lensbridge_events_total{lens="sre"}') over every worker that
        ever ran: live ones scraped now, dead or restarted ones at their last scrape."""
        total = self.retired.get(sample, 0.0)
        for worker in self.workers:
            if worker in self.alive():
                try:
                    self.last_scrape[id(worker)] = self.scrape(worker)
                except OSError:
                    pass
            total += self.last_scrape.get(id(worker), {}).get(sample, 0.0)
        return total

    def value(self, worker: WorkerProcess, sample: str) -> float:
        return self.scrape(worker).get(sample, 0.0)

    def wait_for(self, predicate, timeout_s: float, what: str) -> None:
        """Like WorkerProcess.wait_for, failing with every live worker's log tail."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if predicate():
                    return
            except OSError:  # a metrics endpoint not up yet
                pass
            time.sleep(0.3)
        tails = "\n".join(f"--- {w.log_path.name} ---\n{w.log_tail(40)}" for w in self.workers)
        raise TimeoutError(f"timed out waiting for {what}; logs:\n{tails}")

    def wait_ready(self, workers: list[WorkerProcess] | None = None, timeout_s: float = 90) -> None:
        """Every given (default: live) worker reports ready: it joined and recovered its tables."""
        workers = self.alive() if workers is None else workers

        def ready() -> bool:
            for w in workers:
                w.assert_alive()
            return all(self.value(w, "lensbridge_ready") == 1.0 for w in workers)

        self.wait_for(ready, timeout_s, "workers ready")

    def joiner_owner(self) -> WorkerProcess | None:
        """The live worker that runs the joiner (owns the summaries partition), if one does."""
        owners = [w for w in self.alive() if self.value(w, "lensbridge_joiner_active") == 1.0]
        return owners[0] if len(owners) == 1 else None

    def stop_all(self) -> None:
        for worker in self.workers:
            worker.stop()

    # -- logs ------------------------------------------------------------------------------------
    def first_restore_after(self, worker: WorkerProcess, since_s: float, lens: str | None = None
                            ) -> tuple[float, int] | None:
        """(time, partition) of the first 'partition N restored at offset' line in the worker's
        log at or after `since_s` (epoch seconds): the moment it starts folding a partition."""
        for line in worker.log_path.read_text(errors="replace").splitlines():
            match = RESTORED.search(line)
            at = log_time(line)
            if match and at is not None and at >= since_s and (lens is None or match.group(1) == lens):
                return at, int(match.group(2))
        return None

    def log_lines(self, worker: WorkerProcess, pattern: str, since_s: float = 0.0) -> list[tuple[float, str]]:
        out = []
        for line in worker.log_path.read_text(errors="replace").splitlines():
            at = log_time(line)
            if at is not None and at >= since_s and re.search(pattern, line):
                out.append((at, line))
        return out


def recovery_reads(log_path: Path) -> list[dict]:
    """Every table recovery in a worker log: when it started and ended and, per changelog
    partition, how many records it replayed (Faust logs a 'Highwater' and a 'Reading Starts
    At' table, then 'Recovery complete')."""
    out: list[dict] = []
    table: dict | None = None
    current: dict | None = None
    topic = ""
    for line in log_path.read_text(errors="replace").splitlines():
        at = log_time(line)
        if "Highwater for active changelog partitions" in line:
            current = {"started": at, "highwater": {}, "start": {}, "ended": None}
            out.append(current)
            table = current["highwater"]
        elif "active offsets at start of reading" in line and current is not None:
            table = current["start"]
        elif line.startswith("|") and table is not None:
            cells = [c.strip() for c in line.strip("|").split("|")]
            if len(cells) == 3 and cells[1].isdigit():
                topic = topic if cells[0] == "〃" else cells[0]
                table[(topic, int(cells[1]))] = int(cells[2])
        elif at is not None:
            table = None
            if current is not None and current["ended"] is None and "Recovery complete" in line:
                current["ended"] = at
    for r in out:
        r["replayed"] = {tp: max(0, hw - r["start"].get(tp, -1)) for tp, hw in r["highwater"].items()}
    return out


def group_lag(bootstrap: str, group: str, topics: list[str]) -> dict[tuple[str, int], int]:
    """Per input partition: log end offset minus the group's committed offset (Kafka's lag)."""
    import asyncio

    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient

    from tests.integration import kafka_helpers

    async def lag() -> dict[tuple[str, int], int]:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
        await admin.start()
        await consumer.start()
        try:
            tps = [TopicPartition(t, p) for t in topics
                   for p in range(await kafka_helpers.partition_count(bootstrap, t))]
            committed = await admin.list_consumer_group_offsets(group, partitions=tps)
            end = await consumer.end_offsets(tps)
            return {(tp.topic, tp.partition): end[tp] - max(0, committed[tp].offset if tp in committed else 0)
                    for tp in tps}
        finally:
            await consumer.stop()
            await admin.close()

    return asyncio.run(lag())
