"""Dead letters sized by their cause: an element's own bytes, and a bounded count per message.

`decode.py` rejects elements of a batched message with the whole message as
`raw`; `sized` then, on the error path only:

- gives each rejected array element the exact bytes the producer wrote for it
  (`array_spans`: orjson reports no positions, so a linear scan of the message
  finds the byte span of every top-level element);
- keeps at most `MAX_DEAD_LETTERS` rejections of one message as they are (and at
  most `MAX_DETAIL_RAW_BYTES` of their raw bytes in all, so a huge element
  rejected many times over is not copied many times over), and folds the rest
  into ONE summary rejection: the count, a reasons histogram, the indexes as
  [first, last] ranges (at most `MAX_INDEX_RANGES`), and the whole message as raw.

So a message of n bytes yields dead letters of O(n) bytes, never O(n^2).
"""
from __future__ import annotations

import re
from collections import Counter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # decode.py imports this module
    from app.core.ingest.decode import Rejected

MAX_DEAD_LETTERS = 100  # rejections of one message that get a dead letter of their own
MAX_DETAIL_RAW_BYTES = 256 * 1024  # raw bytes those may carry in all (the first always does)
MAX_INDEX_RANGES = 100  # [first, last] ranges listed in a summary

# A JSON string (escapes included) or a structural character; nothing else in valid JSON
# (numbers, literals, whitespace) contains one of these bytes.
_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{},]', re.DOTALL)
_WS = b" \t\n\r"


def array_spans(raw: bytes, until: int | None = None) -> list[tuple[int, int]] | None:
    """[start, end) byte spans of the top-level elements of `raw`, a valid JSON array; with
    `until`, the scan stops once element `until` is found (the list may end there).

    Linear in len(raw) for valid JSON (the only input it is given). Never raises; None when
    `raw` does not scan as one JSON array."""
    spans: list[tuple[int, int]] = []
    depth, start, end_of_array = 0, -1, -1
    for token in _TOKEN.finditer(raw):
        at = token.start()
        char = raw[at]
        if char == 0x22:  # '"': a whole string, skipped
            if depth == 0:
                return None
        elif char == 0x5B or char == 0x7B:  # '[' or '{'
            if depth == 0:
                if char != 0x5B or raw[:at].strip(_WS):
                    return None
                start = at + 1
            depth += 1
        elif char == 0x5D or char == 0x7D:  # ']' or '}'
            depth -= 1
            if depth == 0:
                spans.append((start, at))
                end_of_array = at + 1
                break
            if depth < 0:
                return None
        elif depth == 1:  # ',' between two top-level elements
            spans.append((start, at))
            start = at + 1
            if until is not None and len(spans) > until:
                return [_strip(raw, lo, hi) for lo, hi in spans]
        elif depth == 0:
            return None
    if end_of_array < 0 or raw[end_of_array:].strip(_WS):
        return None
    stripped = [_strip(raw, lo, hi) for lo, hi in spans]
    if len(stripped) == 1 and stripped[0][0] == stripped[0][1]:
        return []  # "[]"
    return stripped


def _strip(raw: bytes, lo: int, hi: int) -> tuple[int, int]:
    while lo < hi and raw[lo] in _WS:
        lo += 1
    while hi > lo and raw[hi - 1] in _WS:
        hi -= 1
    return lo, hi


def sized(raw: bytes | None, rejected: list[Rejected], array: str = "array") -> list[Rejected]:
    """`rejected` (Rejected tuples of one message) with each array element's own bytes as raw,
    at most MAX_DEAD_LETTERS + 1 long."""
    if not rejected:
        return rejected
    needed = [r.index for r in rejected if r.framing == array and r.raw is raw and r.index is not None]
    if raw is not None and needed:
        spans = array_spans(raw, max(needed))
        if spans is not None:
            rejected = [r._replace(raw=raw[spans[r.index][0]:spans[r.index][1]])
                        if r.framing == array and r.raw is raw and r.index is not None and r.index < len(spans)
                        else r for r in rejected]
    if len(rejected) <= MAX_DEAD_LETTERS and sum(len(r.raw) for r in rejected) <= MAX_DETAIL_RAW_BYTES:
        return rejected
    rejected = sorted(rejected, key=lambda r: -1 if r.index is None else r.index)
    kept: list[Rejected] = []
    budget = MAX_DETAIL_RAW_BYTES
    for bad in rejected:
        if len(kept) == MAX_DEAD_LETTERS or (kept and len(bad.raw) > budget):
            break
        kept.append(bad)
        budget -= len(bad.raw)
    rest = rejected[len(kept):]
    return kept + [_summary(raw, rest)] if rest else kept  # one large element alone needs no summary


def _summary(raw: bytes | None, rest: list[Rejected]) -> Rejected:
    reasons = Counter(r.reason for r in rest)
    ranges = _ranges(sorted({r.index for r in rest if r.index is not None}))
    summary: dict[str, Any] = {"count": len(rest), "reasons": dict(sorted(reasons.items())),
               "indexes": ranges[:MAX_INDEX_RANGES], "indexes_truncated": len(ranges) > MAX_INDEX_RANGES}
    shown = ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in ranges[:5]) + (", ..." if len(ranges) > 5 else "")
    histogram = ", ".join(f"{reason}: {n}" for reason, n in summary["reasons"].items())
    error = (f"{len(rest)} more rejected elements of this message ({histogram}), summarised in this one "
             f"dead letter (elements {shown or 'n/a'}); the first {MAX_DEAD_LETTERS} or fewer have dead "
             f"letters of their own; raw is the whole message. The first of these: {rest[0].error}")
    top = max(summary["reasons"].items(), key=lambda item: item[1])[0]
    return rest[0]._replace(reason=top, error=error, raw=raw if raw is not None else b"", index=None,
                            summary=summary)


def _ranges(indexes: list[int]) -> list[list[int]]:
    ranges: list[list[int]] = []
    for i in indexes:
        if ranges and ranges[-1][1] == i - 1:
            ranges[-1][1] = i
        else:
            ranges.append([i, i])
    return ranges
