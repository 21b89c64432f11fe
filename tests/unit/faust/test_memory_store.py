"""The memory store that lets standby replicas and kept partitions skip the changelog replay."""
from __future__ import annotations

import asyncio
from types import SimpleNamespace

from faust.types import TP

from app.faust.memory_store import Store

CHANGELOG = "app-sre-state-changelog"


def _store() -> Store:
    return Store("lensbridge-memory://", app=SimpleNamespace(conf=SimpleNamespace()), table=None,
                 table_name="sre-state")


def _event(partition: int, offset: int, key: bytes, value: bytes | None):
    message = SimpleNamespace(partition=partition, offset=offset, value=value)
    return SimpleNamespace(key=key, value=value, message=message)


def _apply(store: Store, *events) -> None:
    store.apply_changelog_batch(list(events), to_key=lambda k: k, to_value=lambda v: v)


def _recovered(store: Store, active: set[int], standby: set[int]) -> None:
    asyncio.run(store.on_recovery_completed({TP(CHANGELOG, p) for p in active},
                                            {TP(CHANGELOG, p) for p in standby}))


def test_a_fresh_store_asks_for_a_full_replay():
    assert _store().persisted_offset(TP(CHANGELOG, 0)) is None


def test_a_standby_copy_survives_recovery_and_says_how_far_it_got():
    store = _store()
    _apply(store, _event(1, 0, b"a", b"1"), _event(1, 1, b"b", b"2"), _event(1, 2, b"a", None))
    _recovered(store, active={0}, standby={1})  # Faust's memory store would drop partition 1 here
    assert store.data == {b"b": b"2"}
    assert store.persisted_offset(TP(CHANGELOG, 1)) == 2  # promoted later: replay from offset 2 on


def test_a_partition_dropped_from_this_worker_is_replayed_in_full_when_it_comes_back():
    store = _store()
    _apply(store, _event(1, 0, b"a", b"1"))
    _recovered(store, active={0}, standby=set())
    assert store.data == {} and store.persisted_offset(TP(CHANGELOG, 1)) is None


def test_own_acknowledged_writes_of_an_active_partition_count_as_held():
    store = _store()
    _recovered(store, active={0}, standby={1})
    store.set_persisted_offset(TP(CHANGELOG, 0), 41)
    store.set_persisted_offset(TP(CHANGELOG, 0), 40)  # acknowledgements may come out of order
    assert store.persisted_offset(TP(CHANGELOG, 0)) == 41
    # a write still in flight when its partition moved on: a standby copy must not jump ahead
    store.set_persisted_offset(TP(CHANGELOG, 1), 99)
    assert store.persisted_offset(TP(CHANGELOG, 1)) is None
