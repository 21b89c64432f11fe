"""replay's pure parts: line splitting, key and ts extraction, merge by ts, pacing."""
import io

from app.replay import Pacer
from app.replay_files import REQUESTS, RUM, Line, interleave, iter_lines, key_and_ts, parse_lines


def lines(source, *ts_values):
    return [Line(source, f"{source}{i}".encode(), None, ts) for i, ts in enumerate(ts_values)]


def values(merged):
    return [line.value.decode() for line in merged]


def test_iter_lines_keeps_bytes_and_drops_only_the_newline():
    data = b'{"a":1}\n\n  x \r\nno newline at end'
    assert list(iter_lines(io.BytesIO(data).read)) == [b'{"a":1}', b"", b"  x \r", b"no newline at end"]


def test_iter_lines_joins_lines_split_across_reads():
    chunks = iter([b'{"ts": 1', b'0}\n{"t', b's": 2}\n', b""])
    reads = []
    got = list(iter_lines(lambda n: next(chunks), before_read=lambda: reads.append(1)))
    assert got == [b'{"ts": 10}', b'{"ts": 2}']
    assert len(reads) == 4  # a flush hook before every read, including the final one


def test_iter_lines_of_empty_input_and_trailing_newline():
    assert list(iter_lines(io.BytesIO(b"").read)) == []
    assert list(iter_lines(io.BytesIO(b"a\n").read)) == [b"a"]


def test_key_and_ts_from_json_object():
    assert key_and_ts(b'{"service":"api","ts":1700000000}', "service") == (b"api", 1700000000.0)
    assert key_and_ts(b'{"cohort":"eu","ts":1700000000500}', "cohort") == (b"eu", 1700000000.5)
    assert key_and_ts(b'{"service":"api","ts":"2024-05-01T12:00:00Z"}', "service") == (b"api", 1714564800.0)


def test_key_and_ts_missing_or_unusable_fields():
    assert key_and_ts(b'{"service": 7, "ts": 5}', "service") == (None, 5.0)  # key not a string
    assert key_and_ts(b'{"service": "api"}', "service") == (b"api", None)
    assert key_and_ts(b'{"service": "api", "ts": "yesterday"}', "service") == (b"api", None)
    assert key_and_ts(b'{"service": "api", "ts": true}', "service") == (b"api", None)
    assert key_and_ts(b'{"cohort": "eu", "ts": 5}', "service") == (None, 5.0)  # other lens' field


def test_key_and_ts_non_objects():
    for raw in (b"not json", b"", b"[1,2]", b'"api"', b"\xff\xfe", b'[{"service":"api","ts":1}]'):
        assert key_and_ts(raw, "service") == (None, None)


def test_parse_lines_tags_source_and_keeps_bytes():
    raw = [b'{"ts": 3, "cohort": "mobile"}', b"garbage"]
    assert list(parse_lines(raw, RUM)) == [
        Line(RUM, raw[0], b"mobile", 3.0),
        Line(RUM, raw[1], None, None),
    ]


def test_interleave_merges_by_ts_ties_to_first():
    a = lines(REQUESTS, 1, 3, 5, 5)
    b = lines(RUM, 2, 3, 4, 6, 7)
    assert values(interleave(a, b)) == [
        "requests0", "rum0", "requests1", "rum1", "rum2", "requests2", "requests3", "rum3", "rum4",
    ]


def test_interleave_sends_lines_without_ts_as_soon_as_they_head_their_file():
    a = lines(REQUESTS, 1, None, 10, None)
    b = lines(RUM, 2, None, 3)
    assert values(interleave(a, b)) == [
        "requests0", "requests1",  # ts 1, then the untimed line right behind it
        "rum0", "rum1", "rum2",  # 2, untimed, 3 (all before requests' 10)
        "requests2", "requests3",
    ]


def test_interleave_with_one_side_empty_or_all_untimed():
    a = lines(REQUESTS, None, None)
    assert values(interleave(a, [])) == ["requests0", "requests1"]
    assert values(interleave([], lines(RUM, 1, 2))) == ["rum0", "rum1"]
    assert list(interleave([], [])) == []


def test_interleave_is_lazy():
    def endless():
        n = 0
        while True:
            n += 1
            yield Line(RUM, b"x", None, float(n))

    merged = interleave(lines(REQUESTS, 1.5), endless())
    assert [next(merged).ts_s for _ in range(4)] == [1.0, 1.5, 2.0, 3.0]


def test_pacer_spaces_sends_and_limits_catch_up():
    pacer = Pacer(rate_per_s=10, now_s=100.0)
    assert pacer.delay_s(100.0) == 0.0
    assert abs(pacer.delay_s(100.0) - 0.1) < 1e-9  # the second send waits one interval
    assert abs(pacer.delay_s(100.1) - 0.1) < 1e-9
    # After a 5 s stall only one second of sends may go out without waiting.
    free = 0
    while pacer.delay_s(105.0) == 0.0:
        free += 1
    assert 10 <= free <= 11  # one second of sends (11 with the one due right now)
