"""PartitionState with a counting accumulator: exact replay, lateness, caps, checkpoints."""
from typing import NamedTuple

import orjson

from app.core.windows.partition import OVERFLOW_SUBJECT, LensSpec, PartitionState
from app.core.windows.windows import PartitionWatermark, WindowSpec


class Ev(NamedTuple):
    ts_s: float
    subject: str


class Counter:
    def __init__(self, start_s, n=0):
        self.start_s, self.n = start_s, n

    def fold(self, events):
        self.n += len(events)

    def to_state(self):
        return {"start": self.start_s, "n": self.n}

    def to_partial(self, subject, partition, window_s):
        return {"subject": subject, "window_start": self.start_s, "partition": partition, "n": self.n}


LENS = LensSpec("t", lambda e: e.subject, Counter, lambda s: Counter(s["start"], s["n"]), Counter.fold)
SPEC = WindowSpec(window_s=60, grace_s=10, idle_s=15, max_open_windows=3)
NOW = 1_000_000_000.0  # wall clock long after these event times (a replay: the clock bound never binds)


def fresh(max_subjects=100):
    return PartitionState(LENS, SPEC, 2, max_subjects, PartitionWatermark(SPEC))


def stream(n, start=1000.0, step=1.0, subjects=("a", "b")):
    return [(i, [Ev(start + i * step, subjects[i % len(subjects)])]) for i in range(n)]


def run(state, messages, batch=7, now=NOW):
    """Fold in batches, persisting like an agent; returns partials emitted and the table."""
    table, emitted = {}, []
    for i in range(0, len(messages), batch):
        state.fold(messages[i:i + batch], now)
        table.update(state.checkpoint())
        emitted += state.closed_partials()
        for key in state.drop_closed():
            table.pop(key, None)
    return emitted, table


def totals(emitted):
    out = {}
    for _, p in emitted:
        out[(p["window_start"], p["subject"])] = out.get((p["window_start"], p["subject"]), 0) + p["n"]
    return out


def test_windows_close_with_exact_counts_and_tombstones():
    state = fresh()
    emitted, table = run(state, stream(200))
    got = totals(emitted)
    # events at 1000..1199: windows [960..1020) ... closed up to watermark 1189
    assert got[(960, "a")] == 10 and got[(960, "b")] == 10
    assert got[(1080, "a")] == 30
    assert all(k[0] + 60 <= 1189 for k in got)
    assert not any(k.startswith("t|2|960|") for k in table)


def test_late_event_is_reported_not_folded():
    state = fresh()
    state.fold([(0, [Ev(1000, "a")]), (1, [Ev(1200, "a")])], NOW)
    out = state.fold([(2, [Ev(1005, "a"), Ev(1195, "a")])], NOW)
    assert [o for o, _ in out.late] == [2]
    assert out.folded == 1


def test_lateness_is_decided_per_event_not_per_batch():
    one = fresh()
    out = one.fold([(0, [Ev(1000, "a")]), (1, [Ev(1200, "a")]), (2, [Ev(1001, "a")])], NOW)
    two = fresh()
    two.fold([(0, [Ev(1000, "a")])], NOW)
    two.fold([(1, [Ev(1200, "a")])], NOW)
    out2 = two.fold([(2, [Ev(1001, "a")])], NOW)
    assert len(out.late) == len(out2.late) == 1


def test_replay_after_crash_counts_every_event_once():
    messages = stream(300, subjects=("a", "b", "c"))
    truth, _ = run(fresh(), messages, batch=11)
    # crash: keep the table as of an earlier checkpoint, restart and replay from an older offset
    state = fresh()
    emitted, table = run(state, messages[:150], batch=11)
    state.fold(messages[150:170], NOW)  # folded, never checkpointed: lost with the process
    restored = PartitionState.restore(LENS, SPEC, 2, 100, table.items(), now_s=0)
    assert restored.offset == 149
    more, _ = run(restored, messages[90:], batch=13)  # Kafka hands out events since the last commit
    assert totals(emitted + more) == totals(truth)


def test_crash_that_keeps_a_flushs_slots_but_loses_its_meta_replays_without_late_events():
    # CI found this: one flush folded a sparse partition across many windows; the slots landed
    # in the changelog, the meta value (written last) did not. The restored watermark was behind
    # windows the state held, the open-window cap forced them closed while the input was
    # re-read, and the re-read events of the windows in between came back late.
    messages = stream(40, start=1000.0, step=30.0, subjects=("a",))  # 20 windows in 20 minutes
    truth, _ = run(fresh(), messages, batch=40)
    state = fresh()
    first, table = run(state, messages[:4], batch=4)
    state.fold(messages[4:], NOW)
    writes = state.checkpoint()
    # The write set is cut part-way: the slots of the later windows landed (a set's order), the
    # earlier windows' slots and the meta value did not.
    table.update({k: v for k, v in writes.items() if not k.endswith("_meta") and int(k.split("|")[2]) >= 1500})
    restored = PartitionState.restore(LENS, SPEC, 2, 100, table.items(), now_s=0)
    assert restored.open_slots > SPEC.max_open_windows  # windows that look open at restore
    outcomes = []
    for i in range(4, len(messages), 5):  # Kafka hands out what the meta did not cover
        outcomes.append(restored.fold(messages[i:i + 5], NOW))
    assert [o.late for o in outcomes if o.late] == []
    assert sum(o.forced_windows for o in outcomes) == 0
    more = restored.closed_partials()
    assert totals(first + more) == totals(truth)


def test_reemission_after_crash_is_byte_identical():
    messages = stream(200)
    state = fresh()
    table = {}
    state.fold(messages, NOW)
    table.update(state.checkpoint())
    first = state.closed_partials()
    # crash before the tombstones landed: the restored state emits the same bytes again
    restored = PartitionState.restore(LENS, SPEC, 2, 100, table.items(), now_s=0)
    again = restored.closed_partials()
    assert [orjson.dumps(p) for _, p in again] == [orjson.dumps(p) for _, p in first]
    assert [k for k, _ in again] == [k for k, _ in first]


def test_subject_cap_folds_overflow_into_other():
    state = fresh(max_subjects=2)
    out = state.fold([(i, [Ev(1000 + i, s)]) for i, s in enumerate("abcd")], NOW)
    assert out.overflow == 2
    state.fold([(9, [Ev(2000, "z")])], NOW)
    got = totals(state.closed_partials())
    assert got == {(960, "a"): 1, (960, "b"): 1, (960, OVERFLOW_SUBJECT): 2}


def test_open_window_cap_closes_oldest_window():
    wide = WindowSpec(window_s=60, grace_s=150, idle_s=15, max_open_windows=3)
    state2 = PartitionState(LENS, wide, 2, 100, PartitionWatermark(wide))
    state2.fold([(0, [Ev(1000, "a")]), (1, [Ev(1065, "a")]), (2, [Ev(1130, "a")])], NOW)
    out2 = state2.fold([(3, [Ev(1195, "a")])], NOW)
    assert out2.forced_windows == 1
    assert [p["window_start"] for _, p in state2.closed_partials()] == [960]


def test_idle_advance_closes_last_window():
    state = fresh()
    state.fold([(0, [Ev(1000, "a")])], now_s=1000)
    assert state.closed_partials() == []
    assert state.advance_to(1030)
    assert not state.advance_to(1020)  # never backwards
    assert [p["window_start"] for _, p in state.closed_partials()] == [960]
    assert state.checkpoint()["t|2|_meta"]


def test_watermark_record_names_partition():
    state = fresh()
    state.fold([(0, [Ev(1000, "a")])], NOW)
    key, rec = state.watermark_record(4)
    assert key == "t|_watermark|2"
    assert rec == {"lens": "t", "type": "watermark", "partition": 2, "partitions": 4, "watermark": 990}


# -- time sanity: the wall clock bounds the watermark --------------------------------------------
T = 1_700_000_000.0  # the manual clock's start (a window boundary: 1_700_000_000 % 60 == 20)


def test_one_event_from_the_future_does_not_make_any_honest_event_late():
    state, table, emitted, late = fresh(), {}, [], 0
    out = state.fold([(0, [Ev(T + 295, "a")])], now_s=T)  # accepted by the 300 s skew limit
    assert state.watermark.watermark_s <= T - SPEC.grace_s
    late += len(out.late)
    for i in range(1, 1001):  # 1,000 honest events, 0.1 s apart, each stamped with the clock
        now = T + i * 0.1
        out = state.fold([(i, [Ev(now, "a")])], now_s=now)
        late += len(out.late)
        table.update(state.checkpoint())
        emitted += state.closed_partials()
        state.drop_closed()
    assert late == 0
    for now in (T + 200, T + 400):  # traffic stops; the clock moves on and idle advance closes windows
        state.advance_to(now - SPEC.grace_s)
        emitted += state.closed_partials()
        state.drop_closed()
    got = totals(emitted)
    assert sum(n for (start, _), n in got.items() if start < T + 240) == 1000  # every honest event counted
    assert got[(window_start_of(T + 295), "a")] == 1  # the future event, in its own window


def window_start_of(ts_s):
    return int(ts_s // SPEC.window_s) * SPEC.window_s


def test_future_window_stays_open_until_the_clock_reaches_it():
    state = fresh()
    state.fold([(0, [Ev(T + 295, "a")])], now_s=T)
    for offset, now in enumerate((T + 100, T + 295, T + 300), start=1):
        state.fold([(offset, [Ev(now, "b")])], now_s=now)
        assert state.watermark.watermark_s <= now - SPEC.grace_s
        assert window_start_of(T + 295) not in {p["window_start"] for _, p in state.closed_partials()}
        state.drop_closed()
    future_end = window_start_of(T + 295) + SPEC.window_s
    state.fold([(10_000, [Ev(future_end + SPEC.grace_s, "b")])], now_s=future_end + SPEC.grace_s)
    assert (window_start_of(T + 295), "a") in totals(state.closed_partials())


def test_honest_events_behind_a_future_event_still_move_the_watermark():
    state = fresh()
    state.fold([(0, [Ev(T + 295, "a")])], now_s=T)
    state.fold([(1, [Ev(T + 100, "a")])], now_s=T + 100)  # below max_ts_s, yet the clock moved on
    assert state.watermark.watermark_s == T + 100 - SPEC.grace_s


def test_future_windows_do_not_force_honest_windows_closed():
    state = fresh()  # max_open_windows=3
    out = state.fold([(i, [Ev(T + 60 * i, "x")]) for i in range(1, 5)], now_s=T)  # 4 future windows
    assert out.forced_windows == 0
    out = state.fold([(10, [Ev(T + 1, "a")]), (11, [Ev(T - 5, "a")])], now_s=T + 1)  # within grace
    assert out.late == [] and out.forced_windows == 0


def test_backfill_far_behind_the_clock_keeps_its_own_event_time():
    state = fresh()
    week_ago = T - 7 * 86_400
    out = state.fold([(i, [Ev(week_ago + i, "a")]) for i in range(200)], now_s=T)
    assert out.late == [] and state.watermark.watermark_s == week_ago + 199 - SPEC.grace_s
