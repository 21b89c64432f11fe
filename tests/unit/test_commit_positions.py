"""The Faust adapter that commits the lens runners' durable positions (a fake consumer, no broker)."""
from __future__ import annotations

import asyncio
from collections import defaultdict

from faust.types import TP

from app.faust_app import _commit_positions


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
