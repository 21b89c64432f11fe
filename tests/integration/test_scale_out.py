"""Several workers in one consumer group on the real broker: crashes, joins, rolling restarts.

Each test compares every merged window of both lenses with the input's truth, and the alert
ids with a single-worker run of the same input. The backlog tests read input topics filled
once per module (>= 200k events per lens on 4 partitions), each with its own app id (its own
consumer group, tables and output topics). The joiner test runs the demo scenario.
"""
from __future__ import annotations

import asyncio
import math
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from tests.integration import kafka_helpers
from tests.integration.alert_checks import alert_ids, assert_consistent
from tests.integration.cluster import Cluster, group_lag, recovery_reads
from tests.integration.cx_data import compare as cx_compare
from tests.integration.cx_data import merged_cx_windows, write_rum
from tests.integration.cx_data import truths as cx_truths
from tests.integration.scenario_run import score, simulate_scenario
from tests.integration.sre_data import compare as sre_compare
from tests.integration.sre_data import merged_sre_windows, write_requests
from tests.integration.sre_data import truths as sre_truths
from tests.integration.worker_proc import lens_env, replay

WINDOW_S, SLICE_S = 20, 5
TIMING = {"LENSBRIDGE_WINDOW_SECONDS": str(WINDOW_S), "LENSBRIDGE_GRACE_SECONDS": "2",
          "LENSBRIDGE_AVAILABILITY_SLICE_SECONDS": str(SLICE_S)}


class _Admin:
    """What the module-scoped fixtures need of the function-scoped `admin` fixture."""

    def __init__(self, bootstrap: str):
        self.bootstrap = bootstrap

    def create_topics(self, *names: str) -> None:
        asyncio.run(kafka_helpers.create_topics(self.bootstrap, names))

    def consume_all(self, topic: str, **kwargs):
        return asyncio.run(kafka_helpers.consume_all(self.bootstrap, topic, **kwargs))


# -- the shared backlog and its single-worker reference -------------------------------------------
@dataclass
class Backlog:
    requests_topic: str
    rum_topic: str
    sre_truth: dict
    cx_truth: dict
    events: int

    @property
    def windows(self) -> int:
        return len(self.sre_truth) + len(self.cx_truth)


@pytest.fixture(scope="module")
def backlog(kafka_bootstrap, tmp_path_factory) -> Backlog:
    """Both input topics, filled once: >= 200k request events and >= 200k RUM events."""
    d = tmp_path_factory.mktemp("backlog")
    requests = write_requests(d / "requests.ndjson", services=10, windows=30, window_s=WINDOW_S,
                              per_window=700, batch_share=0.02, seed=23)
    rum = write_rum(d / "rum.ndjson", windows=30, window_s=WINDOW_S, views_per_window=340, seed=29)
    assert len(requests) >= 200_000 and len(rum) >= 200_000
    suffix = uuid.uuid4().hex[:8]
    b = Backlog(f"requests-scale-{suffix}", f"rum-scale-{suffix}", sre_truths(requests, WINDOW_S, SLICE_S),
                cx_truths(rum, WINDOW_S), len(requests) + len(rum))
    _Admin(kafka_bootstrap).create_topics(b.requests_topic, b.rum_topic)
    env = {**lens_env(kafka_bootstrap, suffix, d), "LENSBRIDGE_TOPIC_REQUESTS": b.requests_topic,
           "LENSBRIDGE_TOPIC_RUM": b.rum_topic}
    replay(env, "--requests", str(d / "requests.ndjson"), "--rum", str(d / "rum.ndjson"))
    return b


def _env(kafka_bootstrap: str, backlog: Backlog, tmp_path: Path, **overrides: str) -> dict[str, str]:
    return lens_env(kafka_bootstrap, uuid.uuid4().hex[:8], tmp_path / "data", **{**TIMING, **overrides},
                    LENSBRIDGE_TOPIC_REQUESTS=backlog.requests_topic, LENSBRIDGE_TOPIC_RUM=backlog.rum_topic)


@dataclass
class Outcome:
    sre: dict
    cx: dict
    cx_resent: list
    alerts: list[dict]


def _read_outputs(admin, env: dict) -> Outcome:
    windows = admin.consume_all(env["LENSBRIDGE_TOPIC_WINDOWS"], quiet_s=0.5, timeout_s=60)
    cx, resent = merged_cx_windows(windows)
    alerts = [orjson.loads(r.value) for r in
              admin.consume_all(env["LENSBRIDGE_TOPIC_ALERTS"], quiet_s=0.5, timeout_s=60)]
    return Outcome(merged_sre_windows(windows), cx, resent, alerts)


def _wait_for_every_window(cluster: Cluster, admin, env: dict, expected: int, timeout_s: float) -> None:
    def done() -> bool:
        records = admin.consume_all(env["LENSBRIDGE_TOPIC_WINDOWS"], quiet_s=0.3, timeout_s=60)
        return len({r.key for r in records}) >= expected

    cluster.wait_for(done, timeout_s, f"{expected} merged windows")


def _finish(cluster: Cluster, admin, env: dict, backlog: Backlog, timeout_s: float = 400) -> Outcome:
    _wait_for_every_window(cluster, admin, env, backlog.windows, timeout_s)
    time.sleep(2)  # the last decisions follow the last windows
    return _read_outputs(admin, env)


def _check(outcome: Outcome, backlog: Backlog, reference: Outcome) -> None:
    """Every window of both lenses exact; the same alert ids as one worker alone; no id
    whose messages contradict each other."""
    assert sre_compare(outcome.sre, backlog.sre_truth) == []
    assert outcome.cx_resent == []
    assert cx_compare(outcome.cx, backlog.cx_truth) == []
    assert alert_ids(outcome.alerts) == alert_ids(reference.alerts)
    assert_consistent(outcome.alerts)


@pytest.fixture(scope="module")
def reference(kafka_bootstrap, backlog, tmp_path_factory) -> Outcome:
    """One worker alone over the same backlog: the alert ids every scaled-out run must give."""
    tmp = tmp_path_factory.mktemp("reference")
    env = _env(kafka_bootstrap, backlog, tmp)
    cluster = Cluster(env, tmp, "single")
    cluster.start()
    try:
        outcome = _finish(cluster, _Admin(kafka_bootstrap), env, backlog, 300)
    finally:
        cluster.stop_all()
    assert sre_compare(outcome.sre, backlog.sre_truth) == [] and cx_compare(outcome.cx, backlog.cx_truth) == []
    assert outcome.alerts, "the backlog should give some alerts, or comparing ids proves nothing"
    return outcome


def _progress(cluster: Cluster) -> float:
    return (cluster.total('lensbridge_events_total{lens="sre"}')
            + cluster.total('lensbridge_events_total{lens="cx"}'))


def _wait_progress(cluster: Cluster, backlog: Backlog, share: float) -> None:
    cluster.wait_for(lambda: _progress(cluster) >= share * backlog.events, 300, f"{share:.0%} of the backlog")


def _requests_partitions(cluster: Cluster, worker, backlog: Backlog) -> float:
    return cluster.value(worker, f'lensbridge_assigned_partitions{{topic="{backlog.requests_topic}"}}')


# -- 1. a worker dies, the survivor takes over; 5. takeover time with and without standbys ----------
TAKEOVER: dict[str, dict] = {}


@pytest.mark.parametrize("standby", ["0", "1"])
def test_survivor_takes_over_a_killed_workers_partitions(kafka_bootstrap, admin, backlog, reference, tmp_path,
                                                         standby):
    env = _env(kafka_bootstrap, backlog, tmp_path, LENSBRIDGE_STANDBY_REPLICAS=standby)
    cluster = Cluster(env, tmp_path)
    a, b = cluster.start(), cluster.start()
    try:
        cluster.wait_ready()
        cluster.wait_for(lambda: [_requests_partitions(cluster, w, backlog) for w in (a, b)] == [2, 2],
                         60, "two input partitions each")
        _wait_progress(cluster, backlog, 0.35)
        victim, survivor = (a, b) if cluster.joiner_owner() is b else (b, a)  # the joiner: test 4
        killed_at = time.time()
        victim.kill()
        outcome = _finish(cluster, admin, env, backlog)
        _check(outcome, backlog, reference)
        TAKEOVER[standby] = takeover = _takeover(cluster, survivor, killed_at)
        print(f"\ntakeover, standby replicas {standby}: {takeover}")
        if len(TAKEOVER) == 2:
            print("takeover (SIGKILL -> first fold on the survivor): "
                  + ", ".join(f"standby {k}: {v['first_fold_s']} s, replayed {v['taken_over_records']['replayed']}"
                              f" of {v['taken_over_records']['changelog']} changelog records"
                              for k, v in sorted(TAKEOVER.items())))
        taken = takeover["taken_over_records"]
        assert taken["changelog"] > 0
        if standby == "1":  # the standby copy is promoted: only the changelog tail is replayed
            assert taken["replayed"] < 0.2 * taken["changelog"], takeover
        else:
            assert taken["replayed"] == taken["changelog"], takeover
    finally:
        cluster.stop_all()


def _takeover(cluster: Cluster, survivor, killed_at: float) -> dict:
    """From the survivor's log: seconds from the SIGKILL to the rebalance, to the end of table
    recovery and to the first partition state restored (its first events being folded), and
    the changelog records replayed for the partitions it took over."""
    log = survivor.log_path
    reads = recovery_reads(log)
    before = [r for r in reads if r["started"] < killed_at]
    after = [r for r in reads if r["started"] >= killed_at]
    own = {tp for tp in before[-1]["highwater"]} if before else set()
    recovery = after[0]
    taken = [tp for tp in recovery["highwater"] if tp not in own and "-state-changelog" in tp[0]]
    assigned = cluster.log_lines(survivor, "Executing _on_partitions_assigned", killed_at)
    first_fold = cluster.first_restore_after(survivor, killed_at)
    return {
        "rebalanced_s": round(assigned[0][0] - killed_at, 2),
        "recovered_s": round(recovery["ended"] - killed_at, 2),
        "recovery_s": round(recovery["ended"] - recovery["started"], 2),
        "first_fold_s": round(first_fold[0] - killed_at, 2),
        "taken_over_records": {"replayed": sum(recovery["replayed"][tp] for tp in taken),
                               "changelog": sum(recovery["highwater"][tp] + 1 for tp in taken)},
    }


# -- 2. a third worker joins under load ------------------------------------------------------------
def test_a_third_worker_joins_mid_stream(kafka_bootstrap, admin, backlog, reference, tmp_path):
    env = _env(kafka_bootstrap, backlog, tmp_path)
    cluster = Cluster(env, tmp_path)
    cluster.start(), cluster.start()
    try:
        cluster.wait_ready()
        _wait_progress(cluster, backlog, 0.3)
        folded_before = _progress(cluster)
        c = cluster.start()
        cluster.wait_for(lambda: _requests_partitions(cluster, c, backlog) >= 1
                         and cluster.value(c, "lensbridge_ready") == 1, 90, "the third worker owns a partition")
        assert folded_before < 0.7 * backlog.events  # it joined while most of the backlog was unread
        outcome = _finish(cluster, admin, env, backlog)
        _check(outcome, backlog, reference)
        # the newcomer really folded part of the stream
        assert cluster.value(c, 'lensbridge_events_total{lens="sre"}') + \
            cluster.value(c, 'lensbridge_events_total{lens="cx"}') > 0
    finally:
        cluster.stop_all()


# -- 3. rolling restart ---------------------------------------------------------------------------
def test_rolling_restart_loses_nothing_and_the_lag_drains(kafka_bootstrap, admin, backlog, reference, tmp_path):
    env = _env(kafka_bootstrap, backlog, tmp_path)
    cluster = Cluster(env, tmp_path)
    a, b = cluster.start(), cluster.start()
    stops = []
    try:
        cluster.wait_ready()
        for worker, share in ((a, 0.2), (b, 0.5)):
            _wait_progress(cluster, backlog, share)
            other = b if worker is a else a
            stopped_at = time.time()
            assert worker.stop(timeout_s=30) == 0, worker.log_tail()  # SIGTERM: a clean exit
            stops.append(round(time.time() - stopped_at, 2))
            # it left the group: the other worker rebalanced at once, not after the session timeout
            cluster.wait_for(lambda other=other, since=stopped_at:
                             cluster.log_lines(other, "Executing _on_partitions_assigned", since),
                             10, "the other worker's rebalance")
            rebalanced = cluster.log_lines(other, "Executing _on_partitions_assigned", stopped_at)
            assert rebalanced[0][0] - stopped_at < float(env["LENSBRIDGE_SESSION_TIMEOUT_SECONDS"])
            assert "LeaveGroup request succeeded" in worker.log_path.read_text(errors="replace")
            restarted_at = time.time()
            cluster.restart(worker)
            _ready_only_after_recovery(cluster, worker, restarted_at)
            cluster.wait_ready()
        outcome = _finish(cluster, admin, env, backlog)
        _check(outcome, backlog, reference)
        lag: dict = {}

        def drained() -> bool:
            lag.update(group_lag(kafka_bootstrap, env["LENSBRIDGE_APP_ID"],
                                 [backlog.requests_topic, backlog.rum_topic]))
            return all(v == 0 for v in lag.values())

        try:
            cluster.wait_for(drained, 30, "consumer lag 0 on every input partition")
        except TimeoutError as exc:
            raise AssertionError(f"consumer lag per input partition: {lag}") from exc
        print(f"\nrolling restart: SIGTERM to exit {stops} s; lag at the end {lag}")
    finally:
        cluster.stop_all()


def _ready_only_after_recovery(cluster: Cluster, worker, since_s: float) -> None:
    """The readiness gauge turns 1 only once the restarted worker recovered its tables."""
    cluster.wait_for(lambda: cluster.value(worker, "lensbridge_ready") == 1, 90, "restarted worker ready")
    ready_seen = time.time()
    recovered = cluster.log_lines(worker, r"Restore complete!", since_s)
    assert recovered and recovered[0][0] <= ready_seen, "ready before its tables were recovered"


# -- 4. the joiner's worker dies while an incident is open ------------------------------------------
DEMO = {"LENSBRIDGE_WINDOW_SECONDS": "10", "LENSBRIDGE_GRACE_SECONDS": "2",
        "LENSBRIDGE_AVAILABILITY_SLICE_SECONDS": "5"}


def _split(path: Path, cuts: list[float]) -> list[Path]:
    """Split a time-sorted NDJSON file at event times `cuts` into len(cuts) + 1 files."""
    parts = [path.with_suffix(f".part{i}.ndjson") for i in range(len(cuts) + 1)]
    outs = [open(p, "wb") for p in parts]
    try:
        i = 0
        for line in open(path, "rb"):
            obj = orjson.loads(line)
            ts = (obj[0] if isinstance(obj, list) else obj)["ts"]
            while i < len(cuts) and ts >= cuts[i]:
                i += 1
            outs[i].write(line)
    finally:
        for out in outs:
            out.close()
    return parts


def _demo_windows_vs_truth(outcome: Outcome, truth: dict) -> list[str]:
    problems = []
    sre = {(r["service"], r["window_start"]): r for r in truth["sre"]}
    cx = {(r["cohort"], r["window_start"]): r for r in truth["cx"]}
    for lens, got, want in (("sre", outcome.sre, sre), ("cx", outcome.cx, cx)):
        if set(got) != set(want):
            problems.append(f"{lens} windows missing: {sorted(set(want) - set(got))[:5]}, "
                            f"unexpected: {sorted(set(got) - set(want))[:5]}")
    for key in set(outcome.sre) & set(sre):
        got, want = outcome.sre[key], sre[key]
        problems += [f"sre {key} {f}" for f in ("requests", "errors") if got[f] != want[f]]
        problems += [f"sre {key} {q}" for q in ("p50", "p95", "p99")
                     if not math.isclose(got["latency_ms"][q], want[f"latency_{q}_ms"], rel_tol=0.01)]
    for key in set(outcome.cx) & set(cx):
        got, want = outcome.cx[key], cx[key]
        problems += [f"cx {key} {f}" for f in ("sessions", "page_views", "frustrated_sessions", "abandons",
                                                "completes") if got[f] != want[f]]
    return problems


class _Feeder(threading.Thread):
    """Replays the demo's later parts while the test watches: the first incident's windows
    paced (so there is time to kill the joiner between firing and resolve), then the rest."""

    def __init__(self, env: dict, parts: list[tuple[Path, Path]], rate: str = "1500"):
        super().__init__(daemon=True)
        self.env, self.parts, self.rate, self.errors = env, parts, rate, []

    def run(self) -> None:
        try:
            (req, rum), (req_rest, rum_rest) = self.parts
            replay(self.env, "--requests", str(req), "--rum", str(rum), "--rate", self.rate)
            replay(self.env, "--requests", str(req_rest), "--rum", str(rum_rest))
        except BaseException as exc:  # surfaced by the test
            self.errors.append(exc)


def read_alerts(admin, env: dict, quiet_s: float) -> list[dict]:
    return [orjson.loads(r.value) for r in admin.consume_all(env["LENSBRIDGE_TOPIC_ALERTS"], quiet_s=quiet_s,
                                                             timeout_s=30)]


def _kill_the_joiner_while_an_incident_is_open(cluster: Cluster, admin, env: dict) -> tuple[set[str], float]:
    """Wait for the first firing alert, kill the joiner's worker at once; the ids open then."""
    alerts: list[dict] = []

    def firing() -> bool:
        alerts[:] = read_alerts(admin, env, 0.1)
        return any(a["status"] == "firing" for a in alerts)

    cluster.wait_for(firing, 120, "the first firing alert")
    joiner = cluster.joiner_owner()
    assert joiner is not None
    open_ids = {a["alert_id"] for a in alerts if a["status"] == "firing"} - \
        {a["alert_id"] for a in alerts if a["status"] == "resolved"}
    assert open_ids, "the incident resolved before the kill: pace the replay slower"
    killed_at = time.time()
    joiner.kill()
    return open_ids, killed_at


def _single_worker(admin, env: dict, unique: str, tmp_path: Path, windows: int) -> Outcome:
    """The same input through one worker alone (own app id and output topics, no standby)."""
    single_env = {**env, "LENSBRIDGE_APP_ID": f"lb-{unique}-single", "LENSBRIDGE_STANDBY_REPLICAS": "0",
                  **{f"LENSBRIDGE_TOPIC_{t}": f"{t.lower()}-{unique}-single"
                     for t in ("SUMMARIES", "WINDOWS", "ALERTS", "DLQ")}}
    single = Cluster(single_env, tmp_path, "single")
    single.start()
    try:
        _wait_for_every_window(single, admin, single_env, windows, 300)
        time.sleep(2)
        return _read_outputs(admin, single_env)
    finally:
        single.stop_all()


def test_joiner_killed_with_an_open_incident_resolves_it_under_the_same_id(kafka_bootstrap, admin, tmp_path):
    expected = simulate_scenario(tmp_path, "scenarios/demo.json")
    truth = orjson.loads((tmp_path / "truth.json").read_bytes())
    windows = len(truth["sre"]) + len(truth["cx"])
    first = min(expected["incidents"], key=lambda i: i["incident_start"])
    # before the first incident: a backlog; then its windows paced; then the rest at full speed
    cuts = [first["incident_start"], first["incident_end"] + 60]
    parts = list(zip(_split(tmp_path / "requests.ndjson", cuts), _split(tmp_path / "rum.ndjson", cuts), strict=True))
    unique = uuid.uuid4().hex[:8]
    env = lens_env(kafka_bootstrap, unique, tmp_path / "data", **DEMO, LENSBRIDGE_STANDBY_REPLICAS="1")
    admin.create_topics(env["LENSBRIDGE_TOPIC_REQUESTS"], env["LENSBRIDGE_TOPIC_RUM"])
    replay(env, "--requests", str(parts[0][0]), "--rum", str(parts[0][1]))
    cluster = Cluster(env, tmp_path)
    cluster.start(), cluster.start()
    try:
        cluster.wait_ready()
        feeder = _Feeder(env, parts[1:])
        feeder.start()
        open_ids, killed_at = _kill_the_joiner_while_an_incident_is_open(cluster, admin, env)
        feeder.join(timeout=180)
        assert not feeder.is_alive() and feeder.errors == [], feeder.errors
        _wait_for_every_window(cluster, admin, env, windows, 300)
        new_joiner = cluster.joiner_owner()
        assert new_joiner is not None
        cluster.wait_for(lambda: open_ids <= {a["alert_id"] for a in read_alerts(admin, env, 0.3)
                                              if a["status"] == "resolved"}, 60, "the open incidents to resolve")
        time.sleep(2)
        outcome = _read_outputs(admin, env)
    finally:
        cluster.stop_all()
    restored = cluster.log_lines(new_joiner, "joiner restored", killed_at)
    print(f"\njoiner takeover: restored {restored[0][0] - killed_at:.1f} s after the kill; "
          f"open at the kill: {sorted(open_ids)}")
    assert _demo_windows_vs_truth(outcome, truth) == [] and outcome.cx_resent == []
    reference = _single_worker(admin, env, unique, tmp_path, windows)
    assert alert_ids(outcome.alerts) == alert_ids(reference.alerts)
    assert_consistent(outcome.alerts)
    result = score(expected["verdicts"], outcome.alerts, 10)
    assert result["missed"] == [] and result["unexpected"] == []
    for alert_id in open_ids:  # fired before the kill, resolved after it, under the same id
        statuses = [a["status"] for a in outcome.alerts if a["alert_id"] == alert_id]
        assert statuses[0] == "firing" and statuses[-1] == "resolved", statuses
