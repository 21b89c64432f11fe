"""Event-time tumbling windows with a per-partition watermark.

Faust's windowed tables expire on wall-clock time and close windows only when a
later event arrives, so the event-time rules live here, in
pure code with the wall clock passed in:

- windows of `window_s` aligned to the epoch;
- watermark = highest event time seen on the partition minus `grace_s`, but
  never past the wall clock minus `grace_s`: an event stamped in the future
  (accepted within the decoder's skew limit) moves the watermark only as far as
  the clock allows, so it cannot make honest events late; its own (future)
  window stays open until the clock reaches it;
  a window [start, end) is closed once the watermark reaches `end`;
- an event whose window is already closed is late (the caller dead-letters it);
- idle advance (`idle_targets`): a partition that is caught up with its log and
  has had no events for `idle_s` of wall-clock time follows the highest watermark of the lens's other partitions,
  so an empty partition never holds the others back; when every partition is
  idle, event time moves on with the wall clock from the last event seen, so
  the last windows close when traffic stops. Historical data keeps its own
  event time: a replay of last week is not declared late by today's clock
  (the clock bound only ever holds a watermark back, it never pushes one).
- open-window cap (`windows_to_force`): only windows the clock has reached
  count towards `max_open_windows` and only they are force-closed, so future
  windows (at most `max_future_skew_s / window_s` of them, bounded by the
  decoder) never close the honest current ones. The bound is the clock at the
  fold: in a backlog read long after it was produced, a future-stamped event is in
  the past by then and moves the watermark like any other (Kafka record timestamps
  would bound it at production time, but a producer's clock running behind would
  then hold every window open).

Lateness is decided event by event in offset order, never per batch, so the
same input gives the same windows however the consumer happens to batch it
(which is what makes replay after a crash exact). The clock bound does not
change that for events behind the clock, where `min(ts_s, now_s)` is `ts_s`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Collection

NO_WATERMARK = float("-inf")


def window_start(ts_s: float, window_s: int) -> int:
    """Start of the epoch-aligned window holding `ts_s`."""
    return int(ts_s // window_s) * window_s


@dataclass(frozen=True)
class WindowSpec:
    window_s: int = 60
    grace_s: float = 10.0
    idle_s: float = 15.0
    max_open_windows: int = 8


class PartitionWatermark:
    """Watermark bookkeeping for one input partition of one lens."""

    __slots__ = ("spec", "watermark_s", "max_ts_s", "last_event_wall_s")

    def __init__(self, spec: WindowSpec, watermark_s: float = NO_WATERMARK,
                 max_ts_s: float | None = None, last_event_wall_s: float | None = None):
        self.spec = spec
        self.watermark_s = watermark_s
        self.max_ts_s = max_ts_s
        self.last_event_wall_s = last_event_wall_s

    def is_late(self, ts_s: float) -> bool:
        """True when the window holding `ts_s` has already closed on this partition."""
        return window_start(ts_s, self.spec.window_s) + self.spec.window_s <= self.watermark_s

    def observe(self, ts_s: float, now_s: float) -> None:
        """Account for one accepted event (call in offset order) at wall-clock `now_s`."""
        if self.max_ts_s is None or ts_s > self.max_ts_s:
            self.max_ts_s = ts_s
        candidate = min(ts_s, now_s) - self.spec.grace_s
        if candidate > self.watermark_s:
            self.watermark_s = candidate

    def touch(self, now_s: float) -> None:
        """Record that events arrived at wall-clock `now_s` (idle detection)."""
        self.last_event_wall_s = now_s

    def force_to(self, watermark_s: float) -> None:
        """Move the watermark forward (open-window cap); never backwards."""
        if watermark_s > self.watermark_s:
            self.watermark_s = watermark_s

    def is_idle(self, now_s: float) -> bool:
        """No events for `idle_s` of wall-clock time (a partition never seen counts from recovery)."""
        if self.last_event_wall_s is None:
            self.last_event_wall_s = now_s  # first sight: start the idle timer now
        return now_s - self.last_event_wall_s >= self.spec.idle_s

    def is_closed(self, start_s: int) -> bool:
        return start_s + self.spec.window_s <= self.watermark_s

    def to_state(self) -> dict:
        return {
            "watermark_s": None if self.watermark_s == NO_WATERMARK else self.watermark_s,
            "max_ts_s": self.max_ts_s,
        }

    @classmethod
    def from_state(cls, spec: WindowSpec, state: dict, now_s: float) -> "PartitionWatermark":
        watermark = state.get("watermark_s")
        # The idle timer restarts at recovery: wall time spent down is not idleness of the input.
        return cls(spec, NO_WATERMARK if watermark is None else watermark, state.get("max_ts_s"), now_s)


def idle_targets(marks: dict[int, PartitionWatermark], now_s: float, caught_up: Collection[int]) -> dict[int, float]:
    """Watermark each idle partition should move to (only partitions that would move).

    Idle means caught up with the end of its log *and* quiet for `idle_s`: a partition
    whose backlog simply has not been fetched yet is not idle, or its own events would
    turn late when it follows the others.
    """
    idle = {p for p, m in marks.items() if p in caught_up and m.is_idle(now_s)}
    if not idle:
        return {}
    seen = [m for m in marks.values() if m.max_ts_s is not None]
    if not seen:
        return {}  # nothing to follow yet: no event time exists on this lens
    grace_s = seen[0].spec.grace_s
    if len(idle) == len(marks):  # traffic stopped: event time flows with the wall clock
        newest_ts = max(m.max_ts_s for m in seen if m.max_ts_s is not None)
        # every partition is idle, so is_idle() has started its timer: the filter drops none
        last_wall = max(m.last_event_wall_s for m in seen if m.last_event_wall_s is not None)
        target = newest_ts + (now_s - last_wall) - grace_s
    else:
        target = max(m.watermark_s for m in marks.values())
    target = min(target, now_s - grace_s)  # a future-stamped event elsewhere must not be copied
    return {p: target for p in idle if target > marks[p].watermark_s}


def windows_to_force(open_starts: set[int], new_start: int, max_open: int,
                     now_s: float = float("inf")) -> list[int]:
    """Oldest open windows that must close so that opening `new_start` respects the cap.

    Windows starting after `now_s` (opened by future-stamped events) neither count nor
    close: otherwise a few events from the future would force the current windows shut
    and make every honest event in them late. The decoder's skew limit bounds them."""
    if new_start in open_starts or new_start > now_s:
        return []
    present = {start for start in open_starts if start <= now_s}
    if len(present) < max_open:
        return []
    ordered = sorted(present | {new_start})
    excess = len(ordered) - max_open
    return [start for start in ordered[:excess] if start != new_start]
