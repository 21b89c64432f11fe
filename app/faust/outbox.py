"""Everything the agents write to Kafka, as futures that resolve on delivery.

The agents await these before acking their input, so a record that matters
(a partial, a dead letter, an alert) is never lost to a crash after a commit.

Records too large for their topic (`limits`: topic -> max.message.bytes, see
app/kafka/topic_sizes.py) never crash the worker and are never dropped silently: one larger
than the limit is not sent at all (aiokafka would refuse it inside Faust's producer
task, which then dies), one the broker refuses anyway (MESSAGE_TOO_LARGE, not
retriable) resolves its future normally; either way it becomes a small
`record_too_large` dead letter of its own, `lensbridge_records_refused_total` moves,
and the error is logged. Other send failures still propagate (Kafka failures: the
worker exits and re-reads its unacked input).
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable

import orjson
from aiokafka.errors import MessageSizeTooLargeError, RecordTooLargeError

from app.core.ingest.deadletter import DLQ_MAX_RECORD_BYTES, MAX_KEY_BYTES, dead_letter_record
from app.core.ingest.decode import Rejected
from app.core.joiner_table import SUMMARIES_PARTITION
from app.core.sizes import REFUSED_PREFIX_BYTES, bound_alert, fits, refused_record

log = logging.getLogger("lensbridge.outbox")

SIZE_ERRORS = (MessageSizeTooLargeError, RecordTooLargeError)
OVER_LIMIT, BROKER_REFUSED = "over_topic_limit", "message_too_large"  # reason labels of records_refused


def size_error(exc: BaseException | None) -> BaseException | None:
    """The non-retriable size error behind `exc` (also when Faust wrapped it in a
    ProducerSendError), else None."""
    while exc is not None:
        if isinstance(exc, SIZE_ERRORS):
            return exc
        exc = exc.__cause__
    return None


def is_size_error(exc: BaseException) -> bool:
    return size_error(exc) is not None


class Outbox:
    def __init__(self, summaries: Any, windows: Any, alerts: Any, dlq: Any, *,
                 limits: dict[str, int] | None = None, metrics: Any = None,
                 clock: Callable[[], float] = time.time):
        self._summaries, self._windows, self._alerts, self._dlq = summaries, windows, alerts, dlq
        self._limits, self._metrics, self._clock = limits or {}, metrics, clock

    def summary(self, key: str, value: dict) -> asyncio.Future:
        return self._send(self._summaries, key.encode(), orjson.dumps(value), SUMMARIES_PARTITION)

    def merged_window(self, key: str, value: dict) -> asyncio.Future:
        return self._send(self._windows, key.encode(), orjson.dumps(value))

    def alert(self, alert_id: str, value: dict) -> asyncio.Future:
        # Lists that grow with the number of dipping services are cut (`truncated` says so).
        return self._send(self._alerts, alert_id.encode(),
                          orjson.dumps(bound_alert(value), option=orjson.OPT_SORT_KEYS))

    def dead_letter(self, bad: Rejected, topic: str, partition: int, offset: int,
                    key: bytes | None, received_at_s: float) -> asyncio.Future:
        # Sized to the dead-letter topic's own limit, so raw is cut only beyond what it holds;
        # the Kafka key is capped like the record's `key` (a 1 MB input key must not sink it).
        limit = self._limits.get(self._dlq.get_topic_name(), DLQ_MAX_RECORD_BYTES)
        record = dead_letter_record(bad, topic, partition, offset, key, received_at_s, record_limit=limit)
        return self._send(self._dlq, None if key is None else key[:MAX_KEY_BYTES], record)

    # -- size limits ---------------------------------------------------------------------------
    def _send(self, channel: Any, key: bytes | None, value: bytes, partition: int | None = None,
              refusal: bool = False) -> asyncio.Future:
        name = channel.get_topic_name()
        limit = self._limits.get(name)
        if limit is not None and not fits(key, value, limit):
            return asyncio.ensure_future(self._refused(name, key, value, limit, OVER_LIMIT, refusal))
        kwargs = {} if partition is None else {"partition": partition}
        sent = channel.send_soon(key=key, value=value, **kwargs)
        return asyncio.ensure_future(self._delivered(sent, name, key, value, limit, refusal))

    async def _delivered(self, sent: Any, name: str, key: bytes | None, value: bytes,
                         limit: int | None, refusal: bool) -> Any:
        try:
            return await sent
        except Exception as exc:
            if not is_size_error(exc):
                raise
            await self._refused(name, key, value, limit, BROKER_REFUSED, refusal, exc)
            return None

    async def _refused(self, name: str, key: bytes | None, value: bytes, limit: int | None, reason: str,
                       refusal: bool, exc: BaseException | None = None) -> None:
        if self._metrics is not None:
            self._metrics.records_refused.labels(name, reason).inc()
        size = len(value) + len(key or b"")
        if refusal:  # the dead letter of a refused record was refused too: nothing smaller to send
            log.critical("topic %r refused the %d-byte record_too_large dead letter (limit %s); raise "
                         "max.message.bytes of %s", name, size, limit, name)
            return
        cause = (f"{type(size_error(exc)).__name__}" if exc is not None
                 else "larger than the topic's max.message.bytes, not sent")
        bad = refused_record(name, key, value, limit, cause)
        log.error("%s", bad.error)
        record = dead_letter_record(bad, name, 0, 0, key if key and len(key) <= REFUSED_PREFIX_BYTES else None,
                                    self._clock())
        await self._send(self._dlq, None, record, refusal=True)
