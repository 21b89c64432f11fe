"""The joiner's state in its table: which key holds what, and reading it all back.

One changelog partition holds, under these keys:

- `next`: the next summaries offset the joiner needs;
- `p|<lens>|<window start>|<partition>|<subject>`: a pending partial (the record's bytes);
- `wm|<lens>|<partition>`: a lens partition's watermark;
- `rel|<lens>`: how far a lens's windows were released;
- `slo`: the SLO burn state and burn alerts waiting for their CX check;
- `corr|...` (and `corr` of older versions): the correlator's parts (detect/corr_state.py).

Keys are built and split only here, so no runner handles their format.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

import orjson

from app.core.detect import corr_state
from app.core.windows.merger import Released, WindowMerger
from app.core.windows.windows import NO_WATERMARK

SUMMARIES_PARTITION = 0  # the summaries topic has one partition: the joiner sees every partial
NEXT_OFFSET = "next"
BURNS = "slo"
LEGACY_CORRELATOR = "corr"  # the single-value correlator state of older versions
PARTIAL, WATERMARK, RELEASED = "p", "wm", "rel"


def partial_key(record: dict) -> str:
    return f"{PARTIAL}|{record['lens']}|{record['window_start']}|{record['partition']}|{record['subject']}"


def record_writes(record: dict, raw: bytes) -> dict[str, bytes]:
    """What one summaries record the merger took writes: its watermark, or the partial's bytes."""
    if record.get("type") == "watermark":
        return {f"{WATERMARK}|{record['lens']}|{record['partition']}": orjson.dumps(record["watermark"])}
    return {partial_key(record): raw}


def release_writes(merger: WindowMerger, released: list[Released]) -> tuple[dict[str, bytes], dict[str, None]]:
    """(release points, deletions of the released partials), written in that order."""
    points = {f"{RELEASED}|{lens}": orjson.dumps(until) for lens, until in merger.released_until.items()}
    deletions: dict[str, None] = {partial_key(p): None for window in released for p in window.partials}
    return points, deletions


@dataclass
class JoinerState:
    """What the table held, parsed: each part goes to its owner."""

    merger: WindowMerger
    next_offset: int = 0
    burns: dict | None = None
    correlator: dict[str, Any] = field(default_factory=dict)  # key -> parsed value, for CorrelatorTable


def read_state(items: Iterable[tuple[str, bytes]], window_s: int, partitions: int) -> JoinerState:
    state = JoinerState(WindowMerger(window_s, partitions))
    merger = state.merger
    for key, raw in items:
        if key == NEXT_OFFSET:
            state.next_offset = orjson.loads(raw)
        elif key == LEGACY_CORRELATOR or key.startswith(corr_state.PREFIX):
            state.correlator[key] = orjson.loads(raw)
        elif key == BURNS:
            state.burns = orjson.loads(raw)
        else:
            _read_merger_key(merger, key, raw)
    # Partials of windows already released are leftovers of a crash during their deletion.
    for done in [k for k in merger.pending
                 if k[2] + merger.window_s <= merger.released_until.get(k[0], NO_WATERMARK)]:
        del merger.pending[done]
    return state


def _read_merger_key(merger: WindowMerger, key: str, raw: bytes) -> None:
    kind, lens, *rest = key.split("|", 2)
    if kind == WATERMARK:
        merger.watermarks.setdefault(lens, {})[int(rest[0])] = orjson.loads(raw)
    elif kind == RELEASED:
        merger.released_until[lens] = orjson.loads(raw)
    elif kind == PARTIAL:
        partial = orjson.loads(raw)
        merger.pending.setdefault((lens, partial["subject"], partial["window_start"]), {})[
            partial["partition"]] = partial
