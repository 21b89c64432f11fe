"""Runners wired to the shared fakes (tests/fakes.py), with a settable clock and a record
of their commits (`runner.test_clock.now_s`, `runner.test_commits`)."""
from __future__ import annotations

from types import SimpleNamespace

from prometheus_client import CollectorRegistry

from agents.joiner import JoinerRunner
from agents.lens import LensRunner
from app.faust.store import TableStore
from app.lenses import lenses, sre_lens
from app.observe.metrics import Metrics
from app.settings import Settings
from tests.fakes import T0_S, FakeOutbox, FakeTable


def _commits_and_seek():
    commits: list[tuple[str, dict[int, int]]] = []

    async def no_seek(topic: str, partition: int, offset: int) -> None:
        return None

    async def commit(topic: str, positions: dict[int, int]) -> None:
        commits.append((topic, dict(positions)))

    return commits, no_seek, commit


def lens_runner(seek=None, rebalances=lambda: 0, **settings) -> tuple[LensRunner, FakeTable, FakeOutbox]:
    """The SRE lens runner on two partitions, flushing only when told (or by time)."""
    cfg = Settings.from_env({}).replace(partitions=2, flush_events=1_000_000, **settings)
    table, outbox = FakeTable(), FakeOutbox()
    clock = SimpleNamespace(now_s=T0_S + 5.0)
    commits, no_seek, commit = _commits_and_seek()
    runner = LensRunner(sre_lens(cfg), cfg, TableStore(table), outbox, Metrics(CollectorRegistry()),
                        lambda: clock.now_s, seek or no_seek, commit=commit, rebalances=rebalances)
    runner.test_clock = clock
    runner.test_commits = commits
    return runner, table, outbox


def joiner_runner(rebalances=lambda: 0, data: dict | None = None) -> JoinerRunner:
    """The joiner on a table holding `data` (raw keys and values)."""
    cfg = Settings.from_env({})
    table = FakeTable()
    table.data.update(data or {})
    clock = SimpleNamespace(now_s=0.0)
    commits, no_seek, commit = _commits_and_seek()
    joiner = JoinerRunner(lenses(cfg), cfg, TableStore(table), FakeOutbox(), Metrics(CollectorRegistry()),
                          lambda: clock.now_s, no_seek, commit=commit, rebalances=rebalances)
    joiner.test_commits = commits
    joiner.test_clock = clock
    return joiner
