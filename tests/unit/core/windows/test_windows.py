from app.core.windows.windows import (
    NO_WATERMARK,
    PartitionWatermark,
    WindowSpec,
    idle_targets,
    window_start,
    windows_to_force,
)

SPEC = WindowSpec(window_s=60, grace_s=10, idle_s=15, max_open_windows=3)
LATER = 1_000_000_000.0  # a wall clock long after every event time here (the clock bound never binds)
W = 10_000  # wall-clock offset: the idle tests' events are in the past


def test_windows_align_to_the_epoch():
    assert window_start(0, 60) == 0
    assert window_start(59.999, 60) == 0
    assert window_start(60, 60) == 60
    assert window_start(1_700_000_123.5, 60) == 1_700_000_100
    assert window_start(-1, 60) == -60


def test_watermark_is_max_event_time_minus_grace_and_never_goes_back():
    wm = PartitionWatermark(SPEC)
    assert wm.watermark_s == NO_WATERMARK
    wm.observe(1000, LATER)
    assert wm.watermark_s == 990
    wm.observe(900, LATER)  # out of order: no regression
    assert wm.watermark_s == 990
    assert wm.max_ts_s == 1000


def test_window_closes_only_when_watermark_passes_its_end_plus_grace():
    wm = PartitionWatermark(SPEC)
    wm.observe(1019.9, LATER)  # watermark 1009.9 < end of [960, 1020)
    assert not wm.is_closed(960)
    assert not wm.is_late(1000)
    wm.observe(1030, LATER)  # watermark 1020 == end
    assert wm.is_closed(960)
    assert wm.is_late(1019)
    assert not wm.is_late(1020)


def test_event_within_grace_is_not_late():
    wm = PartitionWatermark(SPEC)
    wm.observe(1025, LATER)  # watermark 1015; window [960,1020) still open
    assert not wm.is_late(1015)


def marks(*specs):
    out = {}
    for p, (ts, wall) in enumerate(specs):
        m = PartitionWatermark(SPEC)
        if ts is not None:
            m.observe(ts, W + wall)
        m.touch(W + wall)
        out[p] = m
    return out


def test_idle_partition_follows_the_busiest_partition():
    ms = marks((5000, 100), (1000, 80))  # partition 1 idle for 20 s, partition 0 active
    assert idle_targets(ms, now_s=W + 105, caught_up={0, 1}) == {1: 4990}


def test_partition_with_no_data_never_holds_the_others_back():
    ms = marks((5000, 100), (None, 80))
    assert idle_targets(ms, now_s=W + 105, caught_up={0, 1}) == {1: 4990}


def test_partition_with_unread_backlog_is_not_idle():
    ms = marks((5000, 100), (1000, 80))  # partition 1 quiet for 25 s but its backlog is not read yet
    assert idle_targets(ms, now_s=W + 105, caught_up={0}) == {}


def test_nothing_to_follow_before_any_event():
    ms = marks((None, 0), (None, 0))
    assert idle_targets(ms, now_s=W + 100, caught_up={0, 1}) == {}


def test_when_all_idle_event_time_flows_with_the_wall_clock():
    ms = marks((5000, 100), (4990, 90))
    assert idle_targets(ms, now_s=W + 114, caught_up={0, 1}) == {1: 4990}  # partition 0 idle for 14 s only: follow it
    targets = idle_targets(ms, now_s=W + 130, caught_up={0, 1})  # both idle; 30 s since the last event at ts 5000
    assert targets == {0: 5020, 1: 5020}
    for p, t in targets.items():
        ms[p].force_to(t)
    assert ms[0].is_closed(4920) and ms[1].is_closed(4920)


def test_historical_replay_is_not_made_late_by_the_wall_clock():
    ms = marks((1_000_000, 2_000_000_000 - W), (None, 2_000_000_000 - W))
    targets = idle_targets(ms, now_s=2_000_000_100, caught_up={0, 1})
    assert targets == {0: 1_000_090, 1: 1_000_090}  # event time + 100 s idle - grace, not today


def test_state_round_trip_restarts_idle_timer():
    wm = PartitionWatermark(SPEC)
    wm.observe(1000, LATER)
    restored = PartitionWatermark.from_state(SPEC, wm.to_state(), now_s=7000)
    assert restored.watermark_s == 990 and restored.max_ts_s == 1000
    assert not restored.is_idle(7010) and restored.is_idle(7015)
    empty = PartitionWatermark.from_state(SPEC, PartitionWatermark(SPEC).to_state(), now_s=1)
    assert empty.watermark_s == NO_WATERMARK


def test_open_window_cap_forces_oldest():
    assert windows_to_force({0, 60, 120}, 180, 3) == [0]
    assert windows_to_force({0, 60}, 180, 3) == []
    assert windows_to_force({0, 60, 120}, 60, 3) == []


def test_watermark_never_passes_the_clock_minus_grace():
    wm = PartitionWatermark(SPEC)
    wm.observe(1295, now_s=1000)  # stamped 295 s in the future
    assert wm.watermark_s == 990 and wm.max_ts_s == 1295
    assert not wm.is_late(1000)
    wm.observe(1001, now_s=1001)  # honest, behind max_ts_s: still moves the watermark with the clock
    assert wm.watermark_s == 991


def test_idle_partitions_do_not_copy_a_watermark_from_the_future():
    busy = PartitionWatermark(SPEC)
    busy.observe(W + 395, now_s=W + 100)  # a future event on the busy partition
    busy.touch(W + 100)
    quiet = PartitionWatermark(SPEC)
    quiet.observe(W + 50, now_s=W + 50)
    quiet.touch(W + 50)
    busy.watermark_s = W + 385  # as restored from a worker before the clock bound: capped anyway
    assert idle_targets({0: busy, 1: quiet}, now_s=W + 105, caught_up={0, 1}) == {1: W + 95}
    busy.touch(W + 50)  # both idle: event time flows with the clock, never ahead of it
    assert idle_targets({0: busy, 1: quiet}, now_s=W + 200, caught_up={0, 1}) == {1: W + 190}


def test_open_window_cap_ignores_future_windows():
    assert windows_to_force({0, 60, 120, 180}, 240, 3, now_s=70) == []  # 120..240 are in the future
    assert windows_to_force({0, 60, 240}, 120, 2, now_s=130) == [0]  # 240 neither counts nor closes
    assert windows_to_force({0, 60}, 180, 2, now_s=70) == []  # a future window never forces
