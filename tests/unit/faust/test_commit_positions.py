"""The Faust adapter's commit and shutdown helpers (fake consumer and runners, no broker)."""
from __future__ import annotations

import asyncio
from collections import defaultdict
from types import SimpleNamespace

from faust.types import TP

from app.faust.consumer import commit_positions as _commit_positions
from app.faust.runtime import settle_on_shutdown


class FakeConsumer:
    """The surface `_commit_positions` uses: assignment, Faust's committed map, `_commit`."""

    def __init__(self, assigned: set[TP], accept: bool = True) -> None:
        self.assigned = assigned
        self._committed_offset = defaultdict(lambda: None)
        self.commits: list[dict[TP, int]] = []
        self.accept = accept

    def assignment(self) -> set[TP]:
        return self.assigned

    async def _commit(self, offsets: dict[TP, int]) -> bool:
        self.commits.append(dict(offsets))
        return self.accept


def test_commits_only_assigned_partitions_whose_position_is_ahead() -> None:
    consumer = FakeConsumer({TP("rum", 0), TP("rum", 1), TP("rum", 2)})
    consumer._committed_offset[TP("rum", 1)] = 90
    consumer._committed_offset[TP("rum", 2)] = 500  # Faust got further by itself: never moved back
    asyncio.run(_commit_positions(consumer, "rum", {0: 10, 1: 100, 2: 400, 3: 7}))
    assert consumer.commits == [{TP("rum", 0): 10, TP("rum", 1): 100}]
    assert consumer._committed_offset[TP("rum", 1)] == 100, "Faust's own loop must not commit below it"
    assert consumer._committed_offset[TP("rum", 2)] == 500


def test_nothing_to_commit_makes_no_broker_call() -> None:
    consumer = FakeConsumer({TP("rum", 0)})
    consumer._committed_offset[TP("rum", 0)] = 10
    asyncio.run(_commit_positions(consumer, "rum", {0: 10}))
    assert consumer.commits == []


def test_a_refused_commit_leaves_faust_committed_map_alone() -> None:
    # Faust refuses a commit during a rebalance: the next tick must try again.
    consumer = FakeConsumer({TP("rum", 0)}, accept=False)
    asyncio.run(_commit_positions(consumer, "rum", {0: 10}))
    assert consumer._committed_offset.get(TP("rum", 0)) is None


class HangingRunner:
    """A lens runner whose drain never finishes: its commit waits on a dead consumer thread."""

    def __init__(self) -> None:
        self.lens = SimpleNamespace(name="sre")

    async def drain(self) -> None:
        await asyncio.get_running_loop().create_future()


class SettledJoiner:
    def __init__(self) -> None:
        self.settled = False

    async def ack_durable(self) -> None:
        self.settled = True

    async def commit_durable(self) -> None:
        return None


def test_shutdown_settling_is_bounded_when_a_commit_hangs() -> None:
    # CI: a KeyError inside aiokafka's fetcher crashed Faust, its consumer thread stopped, and
    # the SIGTERM-path commit then waited for it forever: the worker never exited.
    ok = asyncio.run(settle_on_shutdown([HangingRunner()], SettledJoiner(), timeout_s=0.05))
    assert ok is False


def test_shutdown_settles_every_runner_and_the_joiner() -> None:
    class Runner:
        drained = False
        lens = SimpleNamespace(name="cx")

        async def drain(self) -> None:
            self.drained = True

    runner, joiner = Runner(), SettledJoiner()
    assert asyncio.run(settle_on_shutdown([runner], joiner, timeout_s=1.0)) is True
    assert runner.drained and joiner.settled
