"""`replay` against the real broker: exact bytes, keys, topics, and order interleaved by ts."""
import asyncio
import io

from app.replay import replay

REQUESTS = [
    b'{"ts": 1714564800, "service": "checkout", "latency_ms": 120, "status": 200}',
    b'{"ts": "2024-05-01T12:00:02Z", "service": "search", "latency_ms": 40, "status": 500}',
    b"this line is not JSON at all",  # no ts: goes out right after the line before it
    b'{"ts": 1714564804000, "service": "checkout", "latency_ms": 90, "status": 200}',  # epoch ms
    b'{"ts": 1714564806, "service": 17, "latency_ms": 1, "status": 200}',  # key not a string
]
RUM = [
    b'{"ts": 1714564801, "session_id": "s1", "type": "page_view", "cohort": "eu-mobile"}',
    b'{"ts": 1714564803.5, "session_id": "s1", "type": "rage_click", "cohort": "eu-mobile"}',
    b'[{"ts": 1714564804, "session_id": "s2", "type": "page_view"}]',  # an array: no key, no ts
    b'{"ts": "2024-05-01T12:00:05+00:00", "session_id": "s2", "type": "abandon", "cohort": "us"}',
    b'  {"ts": 1714564807, "session_id": "s3", "type": "page_view", "cohort": "us"}  \r',
]
# Expected send order when both go to one topic: merged by ts, untimed lines right behind
# their predecessor in the same file.
MERGED = [REQUESTS[0], RUM[0], REQUESTS[1], REQUESTS[2], RUM[1], RUM[2], REQUESTS[3],
          RUM[3], REQUESTS[4], RUM[4]]


def write(tmp_path, name, lines):
    path = tmp_path / name
    path.write_bytes(b"\n".join(lines) + b"\n")
    return str(path)


def test_replay_two_files_to_their_topics(kafka_bootstrap, admin, unique, tmp_path):
    req_topic, rum_topic = f"requests-{unique}", f"rum-{unique}"
    admin.create_topics(req_topic, rum_topic, partitions=4)
    out = io.StringIO()

    totals = asyncio.run(replay(kafka_bootstrap, write(tmp_path, "req.ndjson", REQUESTS),
                                write(tmp_path, "rum.ndjson", RUM), req_topic, rum_topic,
                                None, out=out))

    assert (totals.requests, totals.rum, totals.failed) == (5, 5, 0)
    assert totals.keyed == 3 + 4
    assert totals.without_ts == 2
    assert "replay: done: 10 messages" in out.getvalue()
    got_req = admin.consume_all(req_topic, min_count=5)
    got_rum = admin.consume_all(rum_topic, min_count=5)
    assert sorted((r.value, r.key) for r in got_req) == sorted([
        (REQUESTS[0], b"checkout"), (REQUESTS[1], b"search"), (REQUESTS[2], None),
        (REQUESTS[3], b"checkout"), (REQUESTS[4], None)])
    assert sorted((r.value, r.key) for r in got_rum) == sorted([
        (RUM[0], b"eu-mobile"), (RUM[1], b"eu-mobile"), (RUM[2], None),
        (RUM[3], b"us"), (RUM[4], b"us")])
    # Keyed lines of one subject share a partition, in file order.
    checkout = [r for r in got_req if r.key == b"checkout"]
    assert len({r.partition for r in checkout}) == 1
    assert [r.value for r in sorted(checkout, key=lambda r: r.offset)] == [REQUESTS[0], REQUESTS[3]]


def test_replay_interleaves_by_ts(kafka_bootstrap, admin, unique, tmp_path):
    # Both files into one single-partition topic: its offsets show the send order.
    topic = f"merged-{unique}"
    admin.create_topics(topic, partitions=1)

    totals = asyncio.run(replay(kafka_bootstrap, write(tmp_path, "req.ndjson", REQUESTS),
                                write(tmp_path, "rum.ndjson", RUM), topic, topic, None,
                                out=io.StringIO()))

    assert totals.sent == 10
    got = admin.consume_all(topic, min_count=10)
    assert [r.value for r in got] == MERGED


def test_replay_with_rate_from_one_file(kafka_bootstrap, admin, unique, tmp_path):
    topic = f"rum-rate-{unique}"
    admin.create_topics(topic, partitions=2)
    out = io.StringIO()

    totals = asyncio.run(replay(kafka_bootstrap, None, write(tmp_path, "rum.ndjson", RUM),
                                f"unused-{unique}", topic, rate_per_s=4.0, out=out))

    assert totals.rum == 5 and totals.requests == 0
    assert totals.elapsed_s >= 0.9  # 5 sends at 4/s: the last one waits ~1 s
    assert "replay: 5 messages" in out.getvalue()  # a progress line came out meanwhile
    assert sorted(r.value for r in admin.consume_all(topic, min_count=5)) == sorted(RUM)
