"""Faust's in-memory table store, made useful for standby replicas.

faust-streaming 0.15.3's memory store defeats `LENSBRIDGE_STANDBY_REPLICAS` in two ways:
`persisted_offset()` is always None, so a standby promoted to active replays its
changelog partition from offset 0 although it holds the data; and
`on_recovery_completed` drops the keys of every partition that is not active, standby
copies included, after which the standby keeps reading from where it was and is left
with a partial copy. (It also makes every rebalance replay, for the partitions a worker
keeps, all its own writes since its previous recovery: a cost that grows with uptime.)

This store remembers, per partition, the last changelog offset its data holds (applied
from the changelog, or written here and acknowledged by the broker), keeps standby
partitions on recovery, and forgets the offset of any partition whose data it drops: a
promoted standby or a kept active partition replays only the changelog tail, and a
partition this worker lost and later regains is still replayed in full.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Optional, Set

from faust.stores import memory
from faust.types import TP, EventT

URL = "lensbridge-memory://"
_ALIAS = "lensbridge-memory"


def register() -> str:
    """Make the store known to Faust's store registry; returns the URL for `faust.App(store=...)`."""
    from faust import stores

    stores.STORES.aliases.setdefault(_ALIAS, f"{__name__}:Store")
    return URL


class Store(memory.Store):
    def __post_init__(self) -> None:
        super().__post_init__()
        self._applied: dict[int, int] = {}  # partition -> last changelog offset `data` holds
        self._active: set[int] | None = None  # active partitions since the last recovery (None: all)

    def apply_changelog_batch(self, batch: Iterable[EventT], to_key: Callable[[Any], Any],
                              to_value: Callable[[Any], Any]) -> None:
        batch = list(batch)
        super().apply_changelog_batch(batch, to_key, to_value)
        for event in batch:
            partition, offset = event.message.partition, event.message.offset
            if offset > self._applied.get(partition, -1):
                self._applied[partition] = offset

    def set_persisted_offset(self, tp: TP, offset: int) -> None:
        """Faust calls this when a changelog record written here is acknowledged (the value is in
        `data` already). A late acknowledgement for a partition no longer active here (a write
        still in flight when it was revoked) is ignored: a standby copy must only move by what it
        applied, in changelog order."""
        if (self._active is None or tp.partition in self._active) and offset > self._applied.get(tp.partition, -1):
            self._applied[tp.partition] = offset

    def persisted_offset(self, tp: TP) -> Optional[int]:
        """The changelog offset up to which `data` holds partition `tp.partition` (None: replay all)."""
        return self._applied.get(tp.partition)

    async def on_recovery_completed(self, active_tps: Set[TP], standby_tps: Set[TP]) -> None:
        keep = {tp.partition for tp in active_tps} | {tp.partition for tp in standby_tps}
        self._active = {tp.partition for tp in active_tps}
        for key, partition in list(self._key_partition.items()):
            if partition not in keep:
                self.data.pop(key, None)
                del self._key_partition[key]
        for partition in list(self._applied):
            if partition not in keep:
                del self._applied[partition]
