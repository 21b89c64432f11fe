"""The dead-letter record (schemas/dead-letter.schema.json): a rejected element as a value.

Bytes are kept lossless: `raw` is always base64 (input may not be text at
all); the key is kept as text when it is valid UTF-8, because keys are usually
service or cohort names a person searches for, and as base64 otherwise, with
`key_encoding` saying which. `raw_bytes` and `key_bytes` invert the record.

Size: every record fits `record_limit_bytes` (the dead-letter topic's
max.message.bytes) by construction. The error text is capped at
`MAX_ERROR_CHARS` and the key at `MAX_KEY_BYTES` (`key_truncated`); `raw` keeps
at most `max_raw_bytes(record_limit_bytes)` bytes, a prefix, with
`raw_truncated`, `raw_length` (the original length) and `raw_sha256` (of the
full bytes) saying what was cut. `record_limit_bytes(max_message_bytes)` is the
limit under which no input message's raw is ever cut: base64 grows raw by 4/3.
"""
import base64
import binascii
import hashlib

import orjson

from app.core.ingest.decode import LATE, SINGLE, Rejected
from app.core.ingest.timeparse import format_rfc3339
from app.core.windows.windows import window_start

RAW_ENCODING = "base64"
MAX_ERROR_CHARS = 2000
MAX_KEY_BYTES = 1024
# Everything of a dead-letter Kafka record but raw's base64 stays under this: the fields
# (topic names <= 249 chars), the error (<= 2000 chars, <= 6 bytes each when JSON-escaped),
# a summary (<= 100 index ranges), the key twice (Kafka key and `key`) and the record overhead.
# app/core/sizes.py sizes the dead-letter topic from `record_limit_bytes`, so the two agree.
ENVELOPE_BYTES = 64 * 1024
# The record limit assumed when none is given: under the broker default of 1048588, so it
# holds on a dead-letter topic created with no size configuration.
DLQ_MAX_RECORD_BYTES = 1_000_000


def late_rejection(events: list, raw: bytes, partition: int, watermark_s: float, window_s: int) -> Rejected:
    """The dead letter of one message's late events (each has `ts_s`), its bytes kept once.

    A message of one late event is that event. A batched message with k late events
    (the others were counted) becomes one record with a `summary` of k: which of its
    elements were late is not known here (vendor mappings can expand one element into
    many events), so the error names the window span and the other elements were counted.
    """
    first = min(events, key=lambda e: e.ts_s)
    start = window_start(first.ts_s, window_s)
    fix = "raise LENSBRIDGE_GRACE_SECONDS to accept later events"
    if len(events) == 1:
        error = (f"event at ts={first.ts_s} belongs to window [{start}, {start + window_s}) which already "
                 f"closed on partition {partition} (watermark {watermark_s:.3f}); {fix}")
        return Rejected(LATE, error, raw)
    last = max(e.ts_s for e in events)
    error = (f"{len(events)} events of this message were late: ts {first.ts_s} to {last}, windows from "
             f"[{start}, {start + window_s}) already closed on partition {partition} (watermark "
             f"{watermark_s:.3f}); its other events were counted, so replay only these; {fix}")
    summary = {"count": len(events), "reasons": {LATE: len(events)}, "indexes": [], "indexes_truncated": True}
    return Rejected(LATE, error, raw, None, SINGLE, summary)


def max_raw_bytes(record_limit_bytes: int) -> int:
    """Bytes of raw a dead-letter record keeps under a topic limit of `record_limit_bytes`."""
    return max(0, (record_limit_bytes - ENVELOPE_BYTES) // 4 * 3)


def record_limit_bytes(max_message_bytes: int) -> int:
    """The dead-letter topic's max.message.bytes at which no raw of an input message up to
    `max_message_bytes` (LENSBRIDGE_MAX_MESSAGE_BYTES) is ever truncated."""
    return -(-max_message_bytes // 3) * 4 + ENVELOPE_BYTES


def dead_letter_record(
    rejected: Rejected,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    received_at_s: float,
    record_limit: int = DLQ_MAX_RECORD_BYTES,
) -> bytes:
    """The dead-letter record for `rejected`, as orjson bytes, under `record_limit` bytes.

    `received_at_s` is when the message was processed (a parameter: the core never reads the clock).
    """
    raw = rejected.raw
    kept = raw[:max_raw_bytes(record_limit)]
    key_text, key_encoding = _encode_key(None if key is None else key[:MAX_KEY_BYTES])
    error = rejected.error
    if len(error) > MAX_ERROR_CHARS:
        error = error[:MAX_ERROR_CHARS] + "... (truncated)"
    error = error.encode("utf-8", "backslashreplace").decode("utf-8")  # lone surrogates: not encodable
    record = {
        "reason": rejected.reason,
        "error": error,
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "key": key_text,
        "key_encoding": key_encoding,
        "key_truncated": key is not None and len(key) > MAX_KEY_BYTES,
        "raw": base64.b64encode(kept).decode("ascii"),
        "raw_encoding": RAW_ENCODING,
        "raw_truncated": len(kept) < len(raw),
        "raw_length": len(raw),
        "raw_sha256": hashlib.sha256(raw).hexdigest(),
        "index": rejected.index,
        "framing": rejected.framing,
        "summary": getattr(rejected, "summary", None),
        "received_at": format_rfc3339(received_at_s),
    }
    return orjson.dumps(record)


def raw_bytes(record: dict) -> bytes:
    """The original bytes of a decoded dead-letter record (the inverse of `raw`); when
    `raw_truncated` is true, the kept prefix of `raw_length` bytes (`raw_sha256` is of all)."""
    if record.get("raw_encoding") != RAW_ENCODING:
        raise ValueError(f"unknown raw_encoding {record.get('raw_encoding')!r}, expected 'base64'")
    return _b64decode(record["raw"], "raw")


def key_bytes(record: dict) -> bytes | None:
    """The original key bytes of a decoded dead-letter record, None for a message without key."""
    key, encoding = record.get("key"), record.get("key_encoding")
    if key is None:
        return None
    if encoding == "utf-8":
        return key.encode("utf-8")
    if encoding == "base64":
        return _b64decode(key, "key")
    raise ValueError(f"unknown key_encoding {encoding!r}, expected 'utf-8' or 'base64'")


def _encode_key(key: bytes | None) -> tuple[str | None, str | None]:
    if key is None:
        return None, None
    try:
        return key.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return base64.b64encode(key).decode("ascii"), "base64"


def _b64decode(text: str, field: str) -> bytes:
    try:
        # validate=True: a stray character is corruption, not something to skip silently.
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"field {field!r} is not valid base64: {exc}") from None
