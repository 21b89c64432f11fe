"""A secured cluster end to end: the worker, `replay` and `alerts` on a real SASL_SSL broker
(SCRAM-SHA-512 over TLS with the test CA, scripts/kafka-sasl.sh), and the worker refusing to
start, naming the setting, on a wrong password or an untrusted certificate; the same broker's
mTLS listener with and without a client certificate."""
from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import orjson
import pytest

from app.kafka.client import security_options
from app.settings import Settings
from tests.integration import kafka_helpers
from tests.integration.worker_proc import ROOT, WorkerProcess, lens_env, replay

START_S = 1_700_000_000
WINDOWS = 19  # the demo scenario cut after its first incident (windows 13-16): checkout errors


def _scenario(tmp_path) -> tuple[dict, dict]:
    demo = orjson.loads((ROOT / "scenarios" / "demo.json").read_bytes())
    demo.update(name="sasl-short", duration_windows=WINDOWS, requests_per_window=500,
                traffic_profile=[p for p in demo["traffic_profile"] if p["window"] < WINDOWS],
                incidents=[i for i in demo["incidents"] if i["name"] == "checkout-errors-peak"])
    (tmp_path / "scenario.json").write_bytes(orjson.dumps(demo))
    done = subprocess.run([sys.executable, "-m", "app.cli", "simulate", "--scenario", str(tmp_path / "scenario.json"),
                           "--out", str(tmp_path), "--start", str(START_S), "--seed", "1"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return (orjson.loads((tmp_path / "expected.json").read_bytes()),
            orjson.loads((tmp_path / "truth.json").read_bytes()))


def _env(broker: dict, unique: str, tmp_path, **overrides: str | None) -> dict[str, str]:
    """A worker's environment: the broker's client settings, then overrides (None: unset)."""
    env = lens_env("", unique, tmp_path / "data", LENSBRIDGE_WINDOW_SECONDS="10",
                   LENSBRIDGE_GRACE_SECONDS="2", LENSBRIDGE_AVAILABILITY_SLICE_SECONDS="5")
    env = {k: v for k, v in env.items() if not k.startswith(("KAFKA_SECURITY", "KAFKA_SASL", "KAFKA_SSL"))}
    env.update(broker)
    env.update(overrides)
    return {k: v for k, v in env.items() if v is not None}


def _alerts_cli(env: dict) -> list[dict]:
    done = subprocess.run([sys.executable, "-m", "app.cli", "alerts", "--from-beginning", "--json"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"lensbridge alerts failed: {done.stderr}"
    return [orjson.loads(line) for line in done.stdout.splitlines() if line.strip()]


def _sre_windows(env: dict) -> dict[tuple[str, int], tuple[int, int]]:
    security = security_options(Settings.from_env(env))
    records = asyncio.run(kafka_helpers.consume_all(env["KAFKA_BOOTSTRAP_SERVERS"], env["LENSBRIDGE_TOPIC_WINDOWS"],
                                                    quiet_s=0.5, timeout_s=60, security=security))
    windows = (orjson.loads(r.value) for r in records)
    return {(w["subject"], w["window_start"]): (w["requests"], w["errors"]) for w in windows if w.get("lens") == "sre"}


def test_worker_replay_and_alerts_on_a_sasl_ssl_broker(sasl_kafka, unique, tmp_path):
    expected, truth = _scenario(tmp_path)
    want_windows = {(w["service"], w["window_start"]): (w["requests"], w["errors"]) for w in truth["sre"]}
    want = next(v for v in expected["verdicts"] if v["lens"] == "sre")
    env = _env(sasl_kafka, unique, tmp_path)
    worker = WorkerProcess(env, tmp_path / "worker.log").start()
    try:
        worker.wait_ready()
        out = replay(env, "--requests", str(tmp_path / "requests.ndjson"), "--rum", str(tmp_path / "rum.ndjson"))
        lines = sum(1 for name in ("requests", "rum") for _ in open(tmp_path / f"{name}.ndjson"))
        assert f"replay: done: {lines} messages" in out and " 0 failed" in out, out
        seen: dict = {}

        def all_windows() -> bool:
            seen.update(_sre_windows(env))
            return set(want_windows) <= set(seen)

        worker.wait_for(all_windows, 180, f"{len(want_windows)} SRE windows on {env['LENSBRIDGE_TOPIC_WINDOWS']}")
        assert {k: seen[k] for k in want_windows} == want_windows  # every request counted, over TLS

        alerts: list[dict] = []

        def fired() -> bool:
            alerts[:] = _alerts_cli(env)
            return any(a["kind"] == want["kind"] and a["subject"] == want["subject"] for a in alerts)

        worker.wait_for(fired, 120, f"a {want['kind']} alert for {want['subject']} from `lensbridge alerts`")
        hit = next(a for a in alerts if a["kind"] == want["kind"] and a["subject"] == want["subject"])
        assert hit["status"] == "firing" and abs(hit["incident_start"] - want["incident_start"]) <= 10, hit
        worker.assert_alive()
    finally:
        worker.stop()


def _other_ca(tmp_path) -> str:
    path = tmp_path / "other-ca.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=not the broker's CA", "-keyout", str(tmp_path / "other-ca.key"), "-out", str(path)],
                   check=True, capture_output=True, timeout=60)
    return str(path)


def _start_fails(env: dict, tmp_path) -> str:
    """The worker's stderr; it must exit 2 at start, before Faust (a hang would be retries: 60 s guard)."""
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "app.cli", "worker"], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, \
        f"exit {done.returncode} after {time.monotonic() - started:.0f}s:\n{done.stderr[-3000:]}"
    assert "Starting" not in done.stderr, "Faust must not start"
    return done.stderr


def test_a_wrong_password_stops_the_worker_naming_the_setting(sasl_kafka, unique, tmp_path):
    env = _env(sasl_kafka, unique, tmp_path, LENSBRIDGE_METRICS_PORT="0", KAFKA_SASL_PASSWORD="not-the-password")
    err = _start_fails(env, tmp_path)
    assert "KAFKA_SASL_PASSWORD" in err and "KAFKA_SASL_USERNAME='lensbridge'" in err, err
    assert "not-the-password" not in err  # the password itself is never printed


@pytest.mark.parametrize("cafile", ["other CA", "unset"])
def test_an_untrusted_certificate_stops_the_worker_naming_the_setting(sasl_kafka, unique, tmp_path, cafile):
    ca = _other_ca(tmp_path) if cafile == "other CA" else None
    env = _env(sasl_kafka, unique, tmp_path, LENSBRIDGE_METRICS_PORT="0", KAFKA_SSL_CAFILE=ca)
    err = _start_fails(env, tmp_path)
    assert "KAFKA_SSL_CAFILE" in err and "not trusted" in err, err
    if ca:
        assert ca in err, err


def test_a_client_certificate_opens_an_mtls_listener(mtls_kafka, unique, tmp_path):
    env = _env({}, unique, tmp_path, **mtls_kafka)
    worker = WorkerProcess(env, tmp_path / "worker.log").start()
    try:
        worker.wait_ready()  # topics checked and created, Faust's consumers and producer up, over mTLS
        assert _alerts_cli(env) == []  # `lensbridge alerts` reads the (empty) alerts topic the same way
    finally:
        worker.stop()


def test_a_missing_client_certificate_stops_the_worker_naming_the_setting(mtls_kafka, unique, tmp_path):
    env = _env({}, unique, tmp_path, **{**mtls_kafka, "KAFKA_SSL_CERTFILE": None, "KAFKA_SSL_KEYFILE": None},
               LENSBRIDGE_METRICS_PORT="0")
    err = _start_fails(env, tmp_path)
    assert "requires a client certificate" in err and "KAFKA_SSL_CERTFILE" in err, err


def test_an_encrypted_client_key_stops_the_worker_without_a_prompt(mtls_kafka, unique, tmp_path):
    key, cert = tmp_path / "enc.key", tmp_path / "enc.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-days", "1", "-subj", "/CN=enc",
                    "-keyout", str(key), "-out", str(cert), "-passout", "pass:secret"],
                   check=True, capture_output=True, timeout=60)
    env = _env({}, unique, tmp_path, **{**mtls_kafka, "KAFKA_SSL_CERTFILE": str(cert), "KAFKA_SSL_KEYFILE": str(key)},
               LENSBRIDGE_METRICS_PORT="0")
    err = _start_fails(env, tmp_path)  # a prompt for the passphrase would hang until the guard
    assert "KAFKA_SSL_KEYFILE" in err and "the private key is encrypted" in err, err


def test_simulate_publishes_live_over_sasl_ssl(sasl_kafka, unique, tmp_path):
    _scenario(tmp_path)  # writes scenario.json (19 windows of 10 s)
    env = _env(sasl_kafka, unique, tmp_path)
    done = subprocess.run([sys.executable, "-m", "app.cli", "simulate", "--scenario", str(tmp_path / "scenario.json"),
                           "--speed", "1000", "--start", str(START_S)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    sent = int(done.stderr.rsplit("simulate: done, ", 1)[1].split()[0])
    security = security_options(Settings.from_env(env))
    got = sum(len(asyncio.run(kafka_helpers.consume_all(env["KAFKA_BOOTSTRAP_SERVERS"], env[topic], quiet_s=0.5,
                                                        timeout_s=60, security=security)))
              for topic in ("LENSBRIDGE_TOPIC_REQUESTS", "LENSBRIDGE_TOPIC_RUM"))
    assert sent > 1000 and got == sent
