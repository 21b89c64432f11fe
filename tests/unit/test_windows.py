from app.core.windows import NO_WATERMARK, PartitionWatermark, WindowSpec, window_start, windows_to_force

SPEC = WindowSpec(window_s=60, grace_s=10, idle_s=15, max_open_windows=3)


def test_windows_align_to_the_epoch():
    assert window_start(0, 60) == 0
    assert window_start(59.999, 60) == 0
    assert window_start(60, 60) == 60
    assert window_start(1_700_000_123.5, 60) == 1_700_000_100
    assert window_start(-1, 60) == -60


def test_watermark_is_max_event_time_minus_grace_and_never_goes_back():
    wm = PartitionWatermark(SPEC)
    assert wm.watermark_s == NO_WATERMARK
    wm.observe(1000)
    assert wm.watermark_s == 990
    wm.observe(900)  # out of order: no regression
    assert wm.watermark_s == 990
    assert wm.max_ts_s == 1000


def test_window_closes_only_when_watermark_passes_its_end_plus_grace():
    wm = PartitionWatermark(SPEC)
    wm.observe(1019.9)  # watermark 1009.9 < end of [960, 1020)
    assert not wm.is_closed(960)
    assert not wm.is_late(1000)
    wm.observe(1030)  # watermark 1020 == end
    assert wm.is_closed(960)
    assert wm.is_late(1019)
    assert not wm.is_late(1020)


def test_event_within_grace_is_not_late():
    wm = PartitionWatermark(SPEC)
    wm.observe(1025)  # watermark 1015; window [960,1020) still open
    assert not wm.is_late(1015)


def test_idle_advance_follows_wall_clock_after_idle_seconds():
    wm = PartitionWatermark(SPEC)
    wm.observe(1000)
    wm.touch(now_s=5000)
    assert not wm.idle_advance(5014.9)
    assert wm.watermark_s == 990
    assert wm.idle_advance(5015)
    assert wm.watermark_s == 5005
    assert wm.is_closed(960)


def test_partition_with_no_data_advances_after_idle_seconds():
    wm = PartitionWatermark(SPEC)
    assert not wm.idle_advance(100.0)  # first sight starts the timer
    assert not wm.idle_advance(114.0)
    assert wm.idle_advance(115.0)
    assert wm.watermark_s == 105.0


def test_state_round_trip_restarts_idle_timer():
    wm = PartitionWatermark(SPEC)
    wm.observe(1000)
    restored = PartitionWatermark.from_state(SPEC, wm.to_state(), now_s=7000)
    assert restored.watermark_s == 990 and restored.max_ts_s == 1000
    assert not restored.idle_advance(7010)
    empty = PartitionWatermark.from_state(SPEC, PartitionWatermark(SPEC).to_state(), now_s=1)
    assert empty.watermark_s == NO_WATERMARK


def test_open_window_cap_forces_oldest():
    assert windows_to_force({0, 60, 120}, 180, 3) == [0]
    assert windows_to_force({0, 60}, 180, 3) == []
    assert windows_to_force({0, 60, 120}, 60, 3) == []
