"""The joiner's first step: collect partials until a window is complete everywhere.

A lens writes, per input partition, the partials of the windows it closed and
then a watermark record. Both go to the single summaries partition in order, so
once every input partition's watermark has passed a window's end, every
partial of that window has arrived: the window is complete and can be merged.
A partition that has no data still sends watermark records (idle advance), so
it never holds the others back.

Partials are kept one per input partition (a partial re-sent after a crash is
byte-identical and simply replaces itself); partials for windows already
released are re-sends too and are ignored.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Collection

from app.core.windows.windows import NO_WATERMARK

Key = tuple[str, str, int]  # (lens, subject, window_start)


@dataclass
class Released:
    lens: str
    subject: str
    window_start: int
    partials: list[dict]


@dataclass
class WindowMerger:
    window_s: int
    partitions: int
    watermarks: dict[str, dict[int, float]] = field(default_factory=dict)
    pending: dict[Key, dict[int, dict]] = field(default_factory=dict)
    released_until: dict[str, float] = field(default_factory=dict)
    ignored_resends: int = 0

    def add(self, record: dict) -> bool:
        """Take one summaries record; True if it changed the state."""
        lens = record["lens"]
        if record.get("type") == "watermark":
            if record.get("watermark") is None:
                return False
            marks = self.watermarks.setdefault(lens, {})
            if record["watermark"] <= marks.get(record["partition"], NO_WATERMARK):
                return False
            marks[record["partition"]] = record["watermark"]
            return True
        if record["window_end"] <= self.released_until.get(lens, NO_WATERMARK):
            self.ignored_resends += 1
            return False
        key = (lens, record["subject"], record["window_start"])
        self.pending.setdefault(key, {})[record["partition"]] = record
        return True

    def complete_until(self, lens: str) -> float | None:
        """Every window of `lens` ending at or before this time is complete (None: not yet known)."""
        marks = self.watermarks.get(lens, {})
        if any(p not in marks for p in range(self.partitions)):
            return None
        return min(marks[p] for p in range(self.partitions))

    def release(self) -> list[Released]:
        """Pop the complete windows, oldest first."""
        out = []
        for lens in sorted({key[0] for key in self.pending} | set(self.watermarks)):
            until = self.complete_until(lens)
            if until is None:
                continue
            ready = sorted(k for k in self.pending if k[0] == lens and k[2] + self.window_s <= until)
            for key in ready:
                parts = self.pending.pop(key)
                out.append(Released(lens, key[1], key[2], [parts[p] for p in sorted(parts)]))
            floor_end = (until // self.window_s) * self.window_s
            if floor_end > self.released_until.get(lens, NO_WATERMARK):
                self.released_until[lens] = floor_end
        return out


def record_problem(record: object, lenses: Collection[str]) -> tuple[str, str] | None:
    """(reason, error) when `record` is not a summaries record `WindowMerger.add` can take.

    Lenses write only well-formed records; this guards against anyone else writing to the
    summaries topic (the joiner dead-letters such a record instead of failing on it)."""
    if type(record) is not dict:
        return "not_object", f"summaries record must be a JSON object, got {type(record).__name__}"
    lens = record.get("lens")
    if type(lens) is not str or lens not in lenses:
        return "out_of_range", f"field 'lens' must be one of {', '.join(sorted(lenses))}, got {_show(lens)}"
    partition = record.get("partition")
    if type(partition) is not int or partition < 0:
        return "wrong_type", f"field 'partition' must be an integer >= 0, got {_show(partition)}"
    if record.get("type") == "watermark":
        mark = record.get("watermark", 0)
        if mark is not None and not _is_number(mark):
            return "wrong_type", f"field 'watermark' must be a number or null, got {_show(mark)}"
        return None
    subject, start, end = record.get("subject"), record.get("window_start"), record.get("window_end")
    if type(subject) is not str or not subject:
        return "wrong_type", f"field 'subject' must be a non-empty string, got {_show(subject)}"
    if type(start) is not int or not isinstance(end, (int, float)) or not _is_number(end) or end <= start:
        return "wrong_type", (f"fields 'window_start' and 'window_end' must be an integer and a later "
                              f"number, got {_show(start)} and {_show(end)}")
    return None


def _is_number(value: object) -> bool:
    return (type(value) is int or type(value) is float) and value == value and abs(value) != float("inf")


def _show(value: object) -> str:
    text = repr(value) if type(value) in (str, int, float, bool) or value is None else type(value).__name__
    return text if len(text) <= 80 else text[:80] + "..."
