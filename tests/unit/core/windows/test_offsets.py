from app.core.windows.offsets import Action, OffsetGuard


def test_in_order_offsets_are_processed_and_duplicates_skipped():
    guard = OffsetGuard(10)
    assert [guard.check(o) for o in (10, 11, 12)] == [Action.PROCESS] * 3
    assert guard.check(11) is Action.DUPLICATE
    assert guard.next_offset == 13


def test_skipped_messages_trigger_one_seek_and_stale_buffer_is_ignored():
    guard = OffsetGuard(10)
    assert guard.check(15) is Action.SEEK  # 10..14 never arrived: the consumer ran ahead
    assert guard.check(16) is Action.IGNORE  # still buffered from before the seek
    assert guard.check(10) is Action.PROCESS  # re-read from the seek position
    assert [guard.check(o) for o in range(11, 17)] == [Action.PROCESS] * 6
    assert not guard.seeking


def test_a_real_hole_in_the_log_is_accepted_after_the_seek():
    guard = OffsetGuard(10)  # offset 10 is a transaction marker: no message has it
    assert guard.check(11) is Action.SEEK
    assert guard.check(12) is Action.IGNORE
    assert guard.check(11) is Action.PROCESS  # delivered again after the seek: the hole is real
    assert guard.check(12) is Action.PROCESS
    assert guard.next_offset == 13
