"""CX slots stay small at the caps: ids as 8-byte digests, at most MAX_SLOT_IDS per set."""
import orjson

from app.core.ingest.events import RumEvent
from app.core.lenses.cx import CxAccumulator, merge_cx_partials
from app.core.lenses.idset import MAX_SLOT_IDS, MAX_SLOT_PAIRS, id_hash, pack, pack_marks, unpack, unpack_marks

W0 = 1_700_000_040
STATE_LIMIT_BYTES = 16 * 1024 * 1024  # app/faust/app.py MAX_STATE_BYTES


def _worst_slot(n: int) -> list[RumEvent]:
    """n sessions of 64-character ids, each frustrated, with a view that completes and one
    that abandons, naming a service: every id set at its largest for n sessions."""
    events = []
    for i in range(n):
        s = f"session-{i:056d}"
        events += [RumEvent(W0 + 1, s, "page_view", "web", view_id=f"v{i:063d}",
                            services=(f"svc-{i % 50}",)),
                   RumEvent(W0 + 2, s, "rage_click", "web", view_id=f"v{i:063d}"),
                   RumEvent(W0 + 3, s, "complete", "web", view_id=f"v{i:063d}")]
    return events


def test_a_slot_at_the_cap_is_exact_and_a_fifth_of_the_state_limit():
    acc = CxAccumulator(W0)
    acc.fold(_worst_slot(MAX_SLOT_IDS))
    state = orjson.dumps(acc.to_state())
    partial = acc.to_partial("web", 0, 60)
    assert (partial["sessions"], partial["frustrated_sessions"]) == (MAX_SLOT_IDS, MAX_SLOT_IDS)
    assert (partial["completes"], partial["ids_over_cap"]) == (MAX_SLOT_IDS, 0)
    assert sum(partial["services"].values()) == MAX_SLOT_IDS
    # sessions + frustrated + views (24 bytes each) + pairs: 4 * 8 + 24 bytes, base64 4/3
    assert len(state) < MAX_SLOT_IDS * 56 * 4 / 3 + 10_000 < STATE_LIMIT_BYTES / 4
    assert len(orjson.dumps(partial)) < 10_000  # counts only: no ids leave the slot
    restored = CxAccumulator.from_state(orjson.loads(state))
    assert orjson.dumps(restored.to_state()) == state
    merged = merge_cx_partials([restored.to_partial("web", 0, 60)])
    assert merged["sessions"] == MAX_SLOT_IDS and merged["ids_over_cap"] == 0


def test_pairs_at_their_cap_keep_the_slot_under_a_third_of_the_limit():
    views = MAX_SLOT_PAIRS // 4
    acc = CxAccumulator(W0)
    acc.fold([RumEvent(W0 + 1, f"s{i % MAX_SLOT_IDS}", "abandon", "web", view_id=f"v{i}",
                       services=("a", "b", "c", "d")) for i in range(views)]
             + [RumEvent(W0 + 2, f"s{i}", "rage_click", "web") for i in range(MAX_SLOT_IDS)])
    p = acc.to_partial("web", 0, 60)
    assert p["services"] == dict.fromkeys("abcd", views) and p["ids_over_cap"] == 0
    assert p["sessions"] == p["frustrated_sessions"] == MAX_SLOT_IDS
    assert len(orjson.dumps(acc.to_state())) < STATE_LIMIT_BYTES / 3


def test_sessions_alone_take_under_eleven_bytes_each():
    acc = CxAccumulator(W0)
    acc.fold([RumEvent(W0 + 1, f"s{i}", "page_view", "web") for i in range(MAX_SLOT_IDS)])
    assert len(acc.to_state()["sessions"]) < MAX_SLOT_IDS * 10.7 + 4


def test_beyond_the_cap_events_still_count_and_are_reported():
    acc = CxAccumulator(W0, max_ids=3, max_pairs=3)
    acc.fold([RumEvent(W0 + 1, f"s{i}", "page_view", "web", view_id=f"v{i}", services=("api",))
              for i in range(5)]
             + [RumEvent(W0 + 2, "s4", "dead_click", "web"),
                RumEvent(W0 + 3, "s0", "abandon", "web", view_id="v0")])
    p = acc.to_partial("web", 0, 60)
    assert (p["sessions"], p["page_views"], p["services"]) == (3, 5, {"api": 3})
    assert p["frustration_events"] == {"dead_click": 1}
    assert p["frustrated_sessions"] == 0  # s4 is untracked: its frustration counts, not it
    assert p["abandons"] == 1  # v0 is tracked
    assert p["ids_over_cap"] == 3  # s3, s4 (with their pairs), then s4's dead click
    restored = CxAccumulator.from_state(orjson.loads(orjson.dumps(acc.to_state())))
    assert restored.to_partial("web", 0, 60) == p
    assert merge_cx_partials([p])["ids_over_cap"] == 3


def test_a_replayed_batch_changes_no_id_set():
    events = _worst_slot(100)
    acc = CxAccumulator(W0)
    acc.fold(events)
    before = acc.to_state()
    acc.fold(events)  # sets and first-marks are idempotent; counters are guarded by offsets
    after = acc.to_state()
    assert {k: after[k] for k in ("sessions", "frustrated_sessions", "views", "view_services")} \
        == {k: before[k] for k in ("sessions", "frustrated_sessions", "views", "view_services")}


def test_packed_forms_round_trip_and_sort():
    ids = {id_hash(f"x{i}") for i in range(100)}
    assert unpack(pack(ids)) == ids and pack(ids) == pack(list(reversed(sorted(ids))))
    marks = {id_hash("a"): [1.5, None], id_hash("b"): [None, 2.25], id_hash("c"): [3.0, 4.0]}
    assert unpack_marks(pack_marks(marks)) == marks
    for bad in ("not base64!", "AAAA", 7):
        try:
            unpack(bad)
        except ValueError:
            continue
        raise AssertionError(f"{bad!r} accepted")
