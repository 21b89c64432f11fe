"""The broker for integration tests, in this order of preference:

1. `KAFKA_BOOTSTRAP_SERVERS` if set (an existing cluster; `make test` sets it to the local broker);
2. a testcontainers `KafkaContainer` if a Docker engine answers. testcontainers' KafkaContainer
   expects Confluent images: we use `confluentinc/cp-kafka:7.x` (override with
   LENSBRIDGE_TEST_KAFKA_IMAGE, same family);
3. otherwise the project's own Apache Kafka 4 broker from Maven jars: `scripts/kafka.sh start`
   (idempotent: reuses a running one) on 127.0.0.1:$KAFKA_PORT (default 9092).

Integration tests never skip for lack of a broker: they fail with the reason.
"""
from __future__ import annotations

import asyncio
import os
import subprocess
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from tests.integration import kafka_helpers

ROOT = Path(__file__).resolve().parents[2]
CP_KAFKA_IMAGE = "confluentinc/cp-kafka:7.6.1"


def _docker_answers() -> bool:
    try:
        import docker

        client = docker.from_env(timeout=3)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # no SDK, no socket, engine down: all mean "no Docker"
        return False


def _local_broker() -> str:
    port = os.environ.get("KAFKA_PORT", "9092")
    done = subprocess.run([str(ROOT / "scripts" / "kafka.sh"), "start"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        pytest.fail(f"scripts/kafka.sh start failed (exit {done.returncode}):\n"
                    f"{done.stdout}\n{done.stderr}", pytrace=False)
    return f"127.0.0.1:{port}"


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """"host:port" of a ready Kafka broker."""
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        yield os.environ["KAFKA_BOOTSTRAP_SERVERS"]
    elif _docker_answers():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer(os.environ.get("LENSBRIDGE_TEST_KAFKA_IMAGE", CP_KAFKA_IMAGE)) as kafka:
            yield kafka.get_bootstrap_server()
    else:
        yield _local_broker()


@pytest.fixture
def unique() -> str:
    """A short unique suffix for topic names and app ids, e.g. f"requests-{unique}"."""
    return uuid.uuid4().hex[:8]


class Admin:
    """Sync wrappers over kafka_helpers for tests bound to one broker."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap

    def create_topics(self, *names: str, partitions: int = 4) -> None:
        asyncio.run(kafka_helpers.create_topics(self.bootstrap, names, partitions))

    def produce(self, topic: str, messages) -> None:
        asyncio.run(kafka_helpers.produce(self.bootstrap, topic, messages))

    def consume_all(self, topic: str, **kwargs) -> list[kafka_helpers.Record]:
        return asyncio.run(kafka_helpers.consume_all(self.bootstrap, topic, **kwargs))

    def partition_count(self, topic: str) -> int:
        return asyncio.run(kafka_helpers.partition_count(self.bootstrap, topic))


@pytest.fixture
def admin(kafka_bootstrap: str) -> Admin:
    """Create topics / produce / read back, synchronously: admin.create_topics(f"t-{unique}")."""
    return Admin(kafka_bootstrap)


def _sasl_run_dir() -> Path:
    cache = Path(os.environ.get("KAFKA_CACHE_DIR") or ROOT / ".kafka")
    cache = cache if cache.is_absolute() else ROOT / cache
    return cache / f"run-{os.environ.get('KAFKA_SASL_INTERNAL_PORT', '19096')}"


def _env_file(path: Path, started: str) -> dict[str, str]:
    if not path.is_file():
        pytest.fail(f"scripts/kafka-sasl.sh started but wrote no {path}:\n{started}", pytrace=False)
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


@pytest.fixture(scope="session")
def sasl_kafka() -> dict[str, str]:
    """A second real broker, beside the plaintext one, whose client listener is SASL_SSL with
    SCRAM-SHA-512 (scripts/kafka-sasl.sh: same jars, own ports and data dir; reused when it
    already runs). Returns the client settings as environment variables: KAFKA_BOOTSTRAP_SERVERS,
    KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME/PASSWORD, KAFKA_SSL_CAFILE."""
    done = subprocess.run([str(ROOT / "scripts" / "kafka-sasl.sh"), "start"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        pytest.fail(f"scripts/kafka-sasl.sh start failed (exit {done.returncode}):\n"
                    f"{done.stdout}\n{done.stderr}", pytrace=False)
    return _env_file(_sasl_run_dir() / "client.env", done.stdout)


@pytest.fixture(scope="session")
def mtls_kafka(sasl_kafka) -> dict[str, str]:
    """The same broker's SSL listener that requires a client certificate signed by the test CA:
    KAFKA_BOOTSTRAP_SERVERS, KAFKA_SECURITY_PROTOCOL=SSL, KAFKA_SSL_CAFILE/CERTFILE/KEYFILE."""
    return _env_file(_sasl_run_dir() / "mtls.env", "")
