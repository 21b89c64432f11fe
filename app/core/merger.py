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
            if record["watermark"] <= marks.get(record["partition"], float("-inf")):
                return False
            marks[record["partition"]] = record["watermark"]
            return True
        if record["window_end"] <= self.released_until.get(lens, float("-inf")):
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
            if floor_end > self.released_until.get(lens, float("-inf")):
                self.released_until[lens] = floor_end
        return out
