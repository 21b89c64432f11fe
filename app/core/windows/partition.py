"""The state of one input partition of one lens, and its crash-safe checkpoints.

Holds the partition's watermark and one accumulator per open (window, subject).
Each accumulator remembers the last input offset folded into it, and the
partition remembers the last offset it fully processed, so after a crash the
events Kafka hands out again are skipped exactly where they were already
counted (Faust's exactly-once mode is not trusted: offsets.py says why).

The caller (a lens agent) drives a cycle per batch:
  fold(messages) -> checkpoint() is persisted -> closed windows' partials are
  emitted from that persisted state -> drop_closed() tombstones are persisted ->
  input offsets are acked.
Partials are built only from state that is already durable, so a partial sent
again after a crash is byte-identical under the same key.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Protocol, Sequence

import orjson

from app.core.windows.windows import NO_WATERMARK, PartitionWatermark, WindowSpec, windows_to_force

OVERFLOW_SUBJECT = "_other"  # real subjects starting with "_" are escaped (`PartitionState._admit`)
NO_OFFSET = -1


class Accumulator(Protocol):
    def to_state(self) -> dict: ...
    def to_partial(self, subject: str, partition: int, window_s: int) -> dict: ...


@dataclass(frozen=True)
class LensSpec:
    """What differs between the lenses: how to name a subject and build accumulators."""

    name: str
    subject_of: Callable[[Any], str]
    new_accumulator: Callable[[int], Accumulator]  # window_start_s -> accumulator
    accumulator_from_state: Callable[[dict], Accumulator]
    fold: Callable[[Any, list], None]  # fold one batch of events into an accumulator (of this lens)


@dataclass
class FoldOutcome:
    late: list[tuple[int, Any]] = field(default_factory=list)  # (offset, event)
    folded: int = 0
    skipped: int = 0  # already counted before a crash
    overflow: int = 0  # folded into the `_other` subject
    forced_windows: int = 0  # closed early by the open-window cap


@dataclass
class _Slot:
    acc: Accumulator
    offset: int


def slot_key(lens: str, partition: int, start_s: int, subject: str) -> str:
    return f"{lens}|{partition}|{start_s}|{subject}"


def meta_key(lens: str, partition: int) -> str:
    return f"{lens}|{partition}|_meta"


class PartitionState:
    def __init__(self, lens: LensSpec, spec: WindowSpec, partition: int, max_subjects: int,
                 watermark: PartitionWatermark, offset: int = NO_OFFSET):
        self.lens = lens
        self.spec = spec
        self.partition = partition
        self.max_subjects = max_subjects
        self.watermark = watermark
        self.offset = offset
        self._slots: dict[tuple[int, str], _Slot] = {}
        self._subjects: dict[int, set[str]] = {}  # open window start -> subjects
        self._dirty: set[tuple[int, str]] = set()
        self._meta_dirty = False
        # Highest offset a restored slot holds. A checkpoint writes slots before the meta value,
        # so a crash can keep a flush's slots and lose its meta: the restored watermark is then
        # behind windows the state already holds, which look open. Re-reading up to here replays
        # what was folded; the open-window cap must not force those windows closed meanwhile, or
        # the re-read events of the windows it skipped over come back late.
        self._replay_until = NO_OFFSET

    # -- folding -----------------------------------------------------------------
    def fold(self, messages: Iterable[tuple[int, Sequence[Any]]], now_s: float) -> FoldOutcome:
        """Fold (offset, events) pairs given in offset order."""
        out = FoldOutcome()
        pending: dict[tuple[int, str], list] = {}
        pending_offset: dict[tuple[int, str], int] = {}
        seen_any = False
        for offset, events in messages:
            if offset <= self.offset:
                out.skipped += len(events)
                continue
            seen_any = True
            self._route(offset, events, pending, pending_offset, out, now_s)
            self.offset = offset
        for key, events in pending.items():
            slot = self._slots.get(key)
            if slot is None:
                slot = self._slots[key] = _Slot(self.lens.new_accumulator(key[0]), NO_OFFSET)
            self.lens.fold(slot.acc, events)
            slot.offset = pending_offset[key]
            self._dirty.add(key)
            out.folded += len(events)
        if seen_any:
            self.watermark.touch(now_s)
            self._meta_dirty = True
        return out

    def _route(self, offset: int, events: Sequence[Any], pending: dict, pending_offset: dict,
               out: FoldOutcome, now_s: float) -> None:
        """Sort one message's events into per-(window, subject) lists, in order.

        The hot loop of the lens (every event passes here): the watermark and window maths
        are inlined, with the same rules as `PartitionWatermark.is_late`/`observe` (the
        watermark never passes `now_s - grace_s`: see `windows`)."""
        wm, window_s = self.watermark, self.spec.window_s
        grace_s = self.spec.grace_s
        ceiling_s = now_s - grace_s
        subject_of, open_subjects, slots = self.lens.subject_of, self._subjects, self._slots
        for event in events:
            ts_s = event[0]  # ts_s: first field of every event tuple
            start = int(ts_s // window_s) * window_s
            if start + window_s <= wm.watermark_s:
                out.late.append((offset, event))
                continue
            subjects = open_subjects.get(start)
            if subjects is None:
                subjects = self._open_window(start, out, offset, now_s)
            subject = subject_of(event)
            if subject not in subjects:
                subject = self._admit(subject, subjects, out)
            key = (start, subject)
            batch = pending.get(key)
            if batch is None:
                slot = slots.get(key)
                if slot is not None and offset <= slot.offset:
                    out.skipped += 1  # folded into this window before a crash
                    wm.observe(ts_s, now_s)
                    continue
                batch = pending[key] = []
            batch.append(event)
            pending_offset[key] = offset
            if wm.max_ts_s is None or ts_s > wm.max_ts_s or \
                    (wm.watermark_s < ceiling_s and ts_s - grace_s > wm.watermark_s):
                wm.observe(ts_s, now_s)  # the second case: catching up behind a future event

    def _admit(self, subject: str, subjects: set[str], out: FoldOutcome) -> str:
        """The subject name a window holds for `subject` (first sight in the window, or escaped).

        Names starting with "_" are reserved (`_other` is the overflow bucket): a real one is
        escaped with one more "_", so a service really named "_other" is "__other" and never
        mixes with the overflow. The mapping is one-to-one and the same on every replay."""
        if subject[:1] == "_":
            subject = "_" + subject
            if subject in subjects:
                return subject
        if len(subjects) >= self.max_subjects:
            subject = OVERFLOW_SUBJECT
            out.overflow += 1
        subjects.add(subject)
        return subject

    def _open_window(self, start: int, out: FoldOutcome, offset: int, now_s: float) -> set[str]:
        if offset > self._replay_until:
            still_open = {s for s in self._subjects if not self.watermark.is_closed(s)}
            for old in windows_to_force(still_open, start, self.spec.max_open_windows, now_s):
                self.watermark.force_to(old + self.spec.window_s)
                out.forced_windows += 1
        subjects = self._subjects[start] = set()
        return subjects

    def advance_to(self, watermark_s: float) -> bool:
        """Idle advance (see `windows.idle_targets`); True if the watermark moved."""
        before = self.watermark.watermark_s
        self.watermark.force_to(watermark_s)
        moved = self.watermark.watermark_s != before
        self._meta_dirty = self._meta_dirty or moved
        return moved

    # -- checkpoint, close, drop ---------------------------------------------------
    def checkpoint(self) -> dict[str, bytes]:
        """Table writes that make everything folded so far durable."""
        writes = {}
        for key in self._dirty:
            slot = self._slots[key]
            writes[slot_key(self.lens.name, self.partition, *key)] = orjson.dumps(
                {"offset": slot.offset, "acc": slot.acc.to_state()})
        if self._meta_dirty:
            writes[meta_key(self.lens.name, self.partition)] = orjson.dumps(
                {"offset": self.offset, "watermark": self.watermark.to_state()})
        self._dirty.clear()
        self._meta_dirty = False
        return writes

    def closed_partials(self) -> list[tuple[str, dict]]:
        """(message key, partial) for every open window the watermark has passed."""
        partials = []
        for start in sorted(self._subjects):
            if not self.watermark.is_closed(start):
                continue
            for subject in sorted(self._subjects[start]):
                slot = self._slots.get((start, subject))
                if slot is None:
                    continue
                key = f"{self.lens.name}|{subject}|{start}|{self.partition}"
                partials.append((key, slot.acc.to_partial(subject, self.partition, self.spec.window_s)))
        return partials

    def drop_closed(self) -> list[str]:
        """Forget closed windows; returns the table keys to tombstone."""
        tombstones = []
        for start in [s for s in self._subjects if self.watermark.is_closed(s)]:
            for subject in self._subjects.pop(start):
                if self._slots.pop((start, subject), None) is not None:
                    self._dirty.discard((start, subject))
                    tombstones.append(slot_key(self.lens.name, self.partition, start, subject))
        return tombstones

    def watermark_record(self, partitions: int) -> tuple[str, dict]:
        wm = self.watermark.watermark_s
        return (f"{self.lens.name}|_watermark|{self.partition}", {
            "lens": self.lens.name, "type": "watermark", "partition": self.partition,
            "partitions": partitions, "watermark": None if wm == NO_WATERMARK else wm,
        })

    @property
    def open_slots(self) -> int:
        return len(self._slots)

    # -- recovery ----------------------------------------------------------------------
    @classmethod
    def restore(cls, lens: LensSpec, spec: WindowSpec, partition: int, max_subjects: int,
                items: Iterable[tuple[str, bytes]], now_s: float) -> "PartitionState":
        """Rebuild from this partition's table entries (as written by `checkpoint`)."""
        meta: dict[str, Any] = {"offset": NO_OFFSET, "watermark": {}}
        slots: list[tuple[int, str, dict]] = []
        for key, raw in items:
            value = orjson.loads(raw)
            if key == meta_key(lens.name, partition):
                meta = value
            else:
                _, _, start_text, subject = key.split("|", 3)
                slots.append((int(start_text), subject, value))
        state = cls(lens, spec, partition, max_subjects,
                    PartitionWatermark.from_state(spec, meta["watermark"], now_s), meta["offset"])
        for start, subject, value in slots:
            state._slots[(start, subject)] = _Slot(lens.accumulator_from_state(value["acc"]), value["offset"])
            state._subjects.setdefault(start, set()).add(subject)
            state._replay_until = max(state._replay_until, value["offset"])
        return state


def partition_prefix(lens: str, partition: int) -> str:
    return f"{lens}|{partition}|"
