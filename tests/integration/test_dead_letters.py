"""Bad input never stops the stream and is never lost: every bad line reaches the dead-letter topic."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import orjson

from app.core.ingest.deadletter import raw_bytes
from tests.integration.worker_proc import WorkerProcess, lens_env, replay

DATA = Path(__file__).resolve().parents[1] / "data"


def test_every_bad_line_is_dead_lettered_with_reason_and_bytes(kafka_bootstrap, admin, unique, tmp_path):
    lines = (DATA / "bad_lines.ndjson").read_bytes().split(b"\n")[:-1]
    expected = orjson.loads((DATA / "bad_lines.expected.json").read_bytes())
    assert len(lines) == len(expected)
    env = lens_env(kafka_bootstrap, unique, tmp_path / "data")
    worker = WorkerProcess(env, tmp_path / "worker.log").start()
    try:
        worker.wait_ready()
        replay(env, "--requests", str(DATA / "bad_lines.ndjson"))
        good = sum(row["good_events"] for row in expected)
        dead = sum(len(row["reasons"]) for row in expected)
        worker.wait_for(lambda: worker.metric("lensbridge_events_total", 'lens="sre"') == good, 60,
                        f"{good} good events folded")
        letters = admin.consume_all(env["LENSBRIDGE_TOPIC_DLQ"], min_count=dead, timeout_s=60)
        sent = {(r.partition, r.offset): r.value for r in admin.consume_all(env["LENSBRIDGE_TOPIC_REQUESTS"])}
        line_of = {value: n for n, value in enumerate(lines, start=1)}
        got: dict[int, list[str]] = {}
        for letter in letters:
            record = orjson.loads(letter.value)
            assert record["topic"] == env["LENSBRIDGE_TOPIC_REQUESTS"]
            original = sent[(record["partition"], record["offset"])]
            raw = raw_bytes(record)  # lossless: the producer's bytes, the element's own in an array
            if record["framing"] == "array":
                assert raw in original and orjson.loads(raw) == orjson.loads(original)[record["index"]]
            else:
                assert raw == original
            assert record["error"]  # a sentence for a person, naming the field
            got.setdefault(line_of[original], []).append(record["reason"])
        want = {row["line"]: row["reasons"] for row in expected if row["reasons"]}
        assert {n: sorted(r) for n, r in got.items()} == {n: sorted(r) for n, r in want.items()}
        # the counter moves per topic and reason, and the worker is still running
        by_reason = Counter(reason for row in expected for reason in row["reasons"])
        for reason, count in by_reason.items():
            labels = f'reason="{reason}",topic="{env["LENSBRIDGE_TOPIC_REQUESTS"]}"'
            assert worker.metric("lensbridge_invalid_events_total", labels) == count, reason
        worker.assert_alive()
        assert "lensbridge_invalid_events_total" in worker.metrics()
    finally:
        worker.stop()
