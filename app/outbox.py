"""Everything the agents write to Kafka, as futures that resolve on delivery.

The agents await these before acking their input, so a record that matters
(a partial, a dead letter, an alert) is never lost to a crash after a commit.
"""
from __future__ import annotations

import asyncio
from typing import Any

import orjson

from app.core.deadletter import dead_letter_record
from app.core.decode import Rejected

SUMMARIES_PARTITION = 0  # the joiner needs every partial of a window in one place


class Outbox:
    def __init__(self, summaries: Any, windows: Any, alerts: Any, dlq: Any):
        self._summaries, self._windows, self._alerts, self._dlq = summaries, windows, alerts, dlq

    def summary(self, key: str, value: dict) -> asyncio.Future:
        return self._summaries.send_soon(key=key.encode(), value=orjson.dumps(value),
                                         partition=SUMMARIES_PARTITION)

    def merged_window(self, key: str, value: dict) -> asyncio.Future:
        return self._windows.send_soon(key=key.encode(), value=orjson.dumps(value))

    def alert(self, alert_id: str, value: dict) -> asyncio.Future:
        return self._alerts.send_soon(key=alert_id.encode(),
                                      value=orjson.dumps(value, option=orjson.OPT_SORT_KEYS))

    def dead_letter(self, bad: Rejected, topic: str, partition: int, offset: int,
                    key: bytes | None, received_at_s: float) -> asyncio.Future:
        record = dead_letter_record(bad, topic, partition, offset, key, received_at_s)
        return self._dlq.send_soon(key=key, value=record)
