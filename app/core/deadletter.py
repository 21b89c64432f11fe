"""The dead-letter record (schemas/dead-letter.schema.json): a rejected element as a value.

Bytes are kept lossless: `raw` is always base64 (input may not be text at
all); the key is kept as text when it is valid UTF-8, because keys are usually
service or cohort names a person searches for, and as base64 otherwise, with
`key_encoding` saying which. `raw_bytes` and `key_bytes` invert the record.

Size: base64 grows raw by 4/3, so the dead-letter topic's max.message.bytes
must exceed 4/3 of LENSBRIDGE_MAX_MESSAGE_BYTES plus about 1 KiB, or an
oversize input message cannot be dead-lettered whole.
"""
import base64
import binascii

import orjson

from app.core.decode import Rejected
from app.core.timeparse import format_rfc3339

RAW_ENCODING = "base64"


def dead_letter_record(
    rejected: Rejected,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    received_at_s: float,
) -> bytes:
    """The dead-letter record for `rejected`, as orjson bytes.

    `received_at_s` is when the message was processed (a parameter: the core never reads the clock).
    """
    key_text, key_encoding = _encode_key(key)
    record = {
        "reason": rejected.reason,
        "error": rejected.error,
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "key": key_text,
        "key_encoding": key_encoding,
        "raw": base64.b64encode(rejected.raw).decode("ascii"),
        "raw_encoding": RAW_ENCODING,
        "index": rejected.index,
        "framing": rejected.framing,
        "received_at": format_rfc3339(received_at_s),
    }
    return orjson.dumps(record)


def raw_bytes(record: dict) -> bytes:
    """The original bytes of a decoded dead-letter record (the inverse of `raw`)."""
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
