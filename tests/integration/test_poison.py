"""Poison pills on the real broker: good traffic interleaved with every poison class, on both
input topics. The worker never exits, every bad message is on the dead-letter topic with its
reason (and its own bytes), and every good event is counted in its window."""
from __future__ import annotations

import math
import time
from collections import Counter

import orjson

from app.core.ingest.deadletter import raw_bytes
from tests.integration.cx_data import merged_cx_windows
from tests.integration.poison_data import COHORTS, SERVICES, Poison, page_view, poisons, request
from tests.integration.sre_data import merged_sre_windows
from tests.integration.worker_proc import WorkerProcess, lens_env

WINDOW_S = 10
WINDOWS = 3
PER_WINDOW = 6  # good messages per subject and window
TIMING = {"LENSBRIDGE_WINDOW_SECONDS": str(WINDOW_S), "LENSBRIDGE_GRACE_SECONDS": "2",
          "LENSBRIDGE_AVAILABILITY_SLICE_SECONDS": "5"}


def _traffic(now_s: float):
    """(requests messages, rum messages, poisons, truth): good and bad interleaved, in time order.

    Truth: (lens, subject, window_start) -> good events (requests, page views)."""
    start = math.floor((now_s - 120) / WINDOW_S) * WINDOW_S
    bad = poisons(now_s, start + 1.5)
    truth: Counter = Counter()
    topics: dict[str, list[tuple[bytes, bytes | None, Poison | None]]] = {"sre": [], "cx": []}
    for n, p in enumerate(bad):  # the poisons' good events all fall in the first window
        p.key = (SERVICES if p.lens == "sre" else COHORTS)[n % 2].encode()
    truth[("sre", "checkout", start)] += 2  # "array, good beside bad" and the NDJSON message
    truth[("sre", "search", start)] += 1
    truth[("cx", "desktop", start)] += 1
    # Those with good events first: sent after the first window closed, their events would be late.
    queue = {lens: sorted((p for p in bad if p.lens == lens), key=lambda p: -p.good) for lens in ("sre", "cx")}
    n = 0
    for w in range(WINDOWS):
        for i in range(PER_WINDOW):
            ts_s = start + w * WINDOW_S + 1 + i * (WINDOW_S - 2) / PER_WINDOW
            for service in SERVICES:
                topics["sre"].append((service.encode(), orjson.dumps(request(ts_s, service)), None))
                truth[("sre", service, start + w * WINDOW_S)] += 1
            for cohort in COHORTS:
                n += 1
                topics["cx"].append((cohort.encode(), orjson.dumps(page_view(ts_s, cohort, n)), None))
                truth[("cx", cohort, start + w * WINDOW_S)] += 1
            for lens in ("sre", "cx"):  # a poison after every good message, until they run out
                if w == 0 and queue[lens]:  # first window only: their good events belong there
                    p = queue[lens].pop(0)
                    topics[lens].append((p.key, p.value, p))
    for lens in ("sre", "cx"):
        topics[lens] += [(p.key, p.value, p) for p in queue[lens]]
    return topics, bad, truth


def test_poison_never_stops_the_worker_and_nothing_good_is_lost(kafka_bootstrap, admin, unique, tmp_path):
    env = lens_env(kafka_bootstrap, unique, tmp_path / "data", **TIMING)
    topic_of = {"sre": env["LENSBRIDGE_TOPIC_REQUESTS"], "cx": env["LENSBRIDGE_TOPIC_RUM"]}
    topics, bad, truth = _traffic(time.time())
    assert len(bad) >= 45 and all(p.value is None or p.value for p in bad if p.name.endswith("tombstone"))
    worker = WorkerProcess(env, tmp_path / "worker.log").start()
    try:
        worker.wait_ready()
        for lens, messages in topics.items():
            admin.produce(topic_of[lens], [(key, value) for key, value, _ in messages])
        good = {lens: sum(n for (l, _, _), n in truth.items() if l == lens) for lens in ("sre", "cx")}
        for lens in ("sre", "cx"):
            worker.wait_for(lambda lens=lens: worker.metric("lensbridge_events_total", f'lens="{lens}"') == good[lens],
                            60, f"{good[lens]} good {lens} events folded")
        letters = sum(p.letters for p in bad)
        dead = [orjson.loads(r.value) for r in admin.consume_all(env["LENSBRIDGE_TOPIC_DLQ"], min_count=letters,
                                                                  timeout_s=60)]
        _every_poison_is_dead_lettered(admin, topic_of, topics, dead)
        _invalid_counters_match(worker, topic_of, dead)
        _every_good_event_is_in_its_window(worker, admin, env, truth)
        worker.assert_alive()
        assert "exiting so the worker restarts" not in worker.log_path.read_text(errors="replace")
    finally:
        worker.stop()


def _every_poison_is_dead_lettered(admin, topic_of: dict, topics: dict, dead: list[dict]) -> None:
    by_position: dict[tuple[str, int, int], list[dict]] = {}
    for letter in dead:
        by_position.setdefault((letter["topic"], letter["partition"], letter["offset"]), []).append(letter)
    problems = []
    for lens, messages in topics.items():
        sent = admin.consume_all(topic_of[lens], min_count=len(messages))
        poison_of = {(key, value): p for key, value, p in messages if p is not None}
        for record in sent:
            p = poison_of.get((record.key, record.value))
            letters = by_position.pop((topic_of[lens], record.partition, record.offset), [])
            if p is None:
                if letters:
                    problems.append(f"good message {record.value[:60]!r} dead-lettered: {letters[0]['error']}")
                continue
            reasons = [letter["reason"] for letter in letters]
            if len(letters) != p.letters or not set(reasons) <= p.reasons:
                problems.append(f"{p.name}: dead letters {Counter(reasons)}, wanted {p.letters} of {set(p.reasons)}")
            for letter in letters:
                problems += _bytes_problems(p, letter, record.value)
    assert not by_position, f"dead letters of no input message: {list(by_position)[:5]}"
    assert not problems, "\n".join(problems)


def _bytes_problems(p: Poison, letter: dict, value: bytes | None) -> list[str]:
    """A dead letter carries its cause's own bytes: the element, the line, or the message."""
    raw, value = raw_bytes(letter), value or b""
    if letter["summary"] is not None:
        ok = raw == value and letter["summary"]["count"] == len(orjson.loads(value)) - 100
    elif letter["framing"] == "array":
        ok = raw in value and orjson.loads(raw) == orjson.loads(value)[letter["index"]]
    elif letter["framing"] == "ndjson":
        ok = raw == value.split(b"\n")[letter["index"]]
    else:
        ok = raw == value
    return [] if ok and not letter["raw_truncated"] else [f"{p.name}: raw {raw[:60]!r} is not its cause's bytes"]


def _invalid_counters_match(worker: WorkerProcess, topic_of: dict, dead: list[dict]) -> None:
    """The counters count every rejected element, those a summary stands for included."""
    want: Counter = Counter()
    for letter in dead:
        for reason, count in (letter["summary"]["reasons"] if letter["summary"] else {letter["reason"]: 1}).items():
            want[(letter["topic"], reason)] += count
    for (topic, reason), count in want.items():
        labels = f'reason="{reason}",topic="{topic}"'
        assert worker.metric("lensbridge_invalid_events_total", labels) == count, (topic, reason)


def _every_good_event_is_in_its_window(worker: WorkerProcess, admin, env: dict, truth: Counter) -> None:
    topic = env["LENSBRIDGE_TOPIC_WINDOWS"]
    got: dict = {}

    def complete() -> bool:
        records = admin.consume_all(topic, quiet_s=0.5, timeout_s=30)
        got.clear()
        got.update({("sre", s, w): v["requests"] for (s, w), v in merged_sre_windows(records).items()})
        got.update({("cx", c, w): v["page_views"] for (c, w), v in merged_cx_windows(records)[0].items()})
        return set(truth) <= set(got)

    worker.wait_for(complete, 60, f"{len(truth)} merged windows")
    assert {key: got[key] for key in truth} == dict(truth)
    assert set(got) == set(truth), f"windows the input does not have: {set(got) - set(truth)}"
    assert worker.metric("lensbridge_late_events_total", 'lens="sre"') == 0
    assert worker.metric("lensbridge_late_events_total", 'lens="cx"') == 0
