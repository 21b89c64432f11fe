"""Compact, exact sets of ids for the CX accumulator's durable state.

A session or view id is kept as the 8-byte blake2b digest of its UTF-8 text, not as the
text itself: 8 bytes in memory and 4 * 8 / 3 ~= 10.7 characters of base64 in the table
value, whatever the id's length (ids of 40-200 characters were 50-200 bytes each as JSON).

Distinct counts stay exact unless two distinct ids of one slot share a digest. For n ids
in one set that happens with probability about n^2 / 2^65: 6.8e-11 at the 50,000 sessions of
`MAX_SLOT_IDS` (one slot in ~15 billion undercounts by one), 1.1e-9 at the 200,000 pairs of
`MAX_SLOT_PAIRS`. We accept that.

Packed forms are sorted, so equal sets give equal bytes (a partial re-emitted after a
restart is byte-identical), and base64 keeps the table value plain JSON.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import math
import struct
from collections.abc import Iterable, Mapping

ID_BYTES = 8
# Distinct ids a CX slot (cohort, window, partition) tracks: sessions and views with a
# complete or abandon, MAX_SLOT_IDS each; (view, service) pairs, MAX_SLOT_PAIRS (a page view
# names several services). Worst-case slot value at the caps: sessions 0.53 MB + frustrated
# 0.53 MB + views 1.6 MB + pairs 2.1 MB + service names: ~4.8 MB, under a third of the 16 MiB
# state limit (and 50,000 sessions alone are 0.53 MB, under 1 MB).
MAX_SLOT_IDS = 50_000
MAX_SLOT_PAIRS = 4 * MAX_SLOT_IDS
_MARKS = struct.Struct("<dd")  # first complete, first abandon (NaN: none)


def id_hash(text: str) -> bytes:
    """The 8-byte digest that stands for an id."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=ID_BYTES).digest()


def pack(ids: Iterable[bytes]) -> str:
    """Sorted, concatenated digests as base64 text."""
    return base64.b64encode(b"".join(sorted(ids))).decode("ascii")


def unpack(packed: str) -> set[bytes]:
    raw = _b64(packed)
    if len(raw) % ID_BYTES:
        raise ValueError(f"packed id set of {len(raw)} bytes is not a multiple of {ID_BYTES}")
    return {raw[i:i + ID_BYTES] for i in range(0, len(raw), ID_BYTES)}


def pack_marks(views: Mapping[bytes, list[float | None]]) -> str:
    """view digest -> [first complete, first abandon], sorted by digest, as base64 of
    digest + two little-endian float64 (NaN for none) per view: 24 bytes a view."""
    parts = []
    for view in sorted(views):
        complete, abandon = views[view]
        parts.append(view + _MARKS.pack(_nan(complete), _nan(abandon)))
    return base64.b64encode(b"".join(parts)).decode("ascii")


def unpack_marks(packed: str) -> dict[bytes, list[float | None]]:
    raw, size = _b64(packed), ID_BYTES + _MARKS.size
    if len(raw) % size:
        raise ValueError(f"packed views of {len(raw)} bytes are not a multiple of {size}")
    out = {}
    for i in range(0, len(raw), size):
        complete, abandon = _MARKS.unpack_from(raw, i + ID_BYTES)
        out[raw[i:i + ID_BYTES]] = [_none(complete), _none(abandon)]
    return out


def _b64(packed: str) -> bytes:
    if not isinstance(packed, str):
        raise ValueError(f"packed ids must be base64 text, got {type(packed).__name__}")
    try:
        return base64.b64decode(packed, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"malformed packed ids: {exc}") from exc


def _nan(x: float | None) -> float:
    return math.nan if x is None else float(x)


def _none(x: float) -> float | None:
    return None if math.isnan(x) else x
