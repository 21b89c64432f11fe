"""Durable per-partition state on a plain Faust table (changelog-backed).

Faust lets a table be written only while a stream is iterating an event of the
same partition (faust-streaming #497: timers and batches raise TypeError). Our
writes happen at batch flushes and from the idle-advance timer, always for a
known input partition, so this adapter writes the local store and the changelog
record for an explicit partition with the table's public `send_changelog`, and
hands back the futures so the caller can await durability before it acks input.

Size: a table value must stay below the changelog's max.message.bytes (MAX_STATE_BYTES,
app/core/sizes.py). The state layout makes that true by construction (one value per
window-subject slot or per subject, never one growing value for everything), so a size
error here is a state failure, not bad input: `write` raises StateTooLargeError naming the
key before anything is written (the worker exits and restarts from durable state), rather
than letting aiokafka refuse the record inside Faust's producer task.
"""
from __future__ import annotations

import asyncio
from typing import Any, Mapping

from agents.ports import wait_all
from app.core.sizes import MAX_STATE_BYTES, fits


class StateTooLargeError(RuntimeError):
    """A table value would not fit its changelog topic: a bug in the state layout."""


class TableStore:
    def __init__(self, table: Any, limit: int = MAX_STATE_BYTES):
        self.table, self.limit = table, limit

    def items(self, prefix: str) -> list[tuple[str, bytes]]:
        """Entries whose key starts with `prefix` (keys are stored as UTF-8 bytes)."""
        raw_prefix = prefix.encode()
        return [(key.decode(), value) for key, value in list(self.table.data.items())
                if key.startswith(raw_prefix) and value is not None]

    def write(self, partition: int, writes: Mapping[str, bytes | None]) -> list[asyncio.Future]:
        """Apply writes (None = delete) locally and to the changelog partition."""
        for key, value in writes.items():
            if value is not None and not fits(key.encode(), value, self.limit):
                raise StateTooLargeError(
                    f"table value {key[:200]!r} is {len(value)} bytes, over the changelog limit of "
                    f"{self.limit} bytes (max.message.bytes); nothing was written")
        futures = []
        data = self.table.data
        for key, value in writes.items():
            raw_key = key.encode()
            if value is None:
                data.pop(raw_key, None)
            else:
                data[raw_key] = value
            futures.append(self.table.send_changelog(partition, raw_key, value))
        return futures

    async def write_and_wait(self, partition: int, writes: Mapping[str, bytes | None]) -> None:
        await wait_all(self.write(partition, writes))
