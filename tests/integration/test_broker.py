"""The broker the integration tests run against is a real, ready Apache Kafka 4.x."""
import asyncio

from aiokafka.conn import create_conn
from aiokafka.protocol.admin import ApiVersionRequest

FETCH, PRODUCE, METADATA = 1, 0, 3


async def _api_versions(bootstrap: str) -> dict[int, tuple[int, int]]:
    host, port = bootstrap.rsplit(":", 1)
    conn = await create_conn(host, int(port))
    try:
        response = await conn.send(ApiVersionRequest())
        return {key: (lo, hi) for key, lo, hi in response.api_versions}
    finally:
        conn.close()


def test_broker_speaks_kafka_4_protocol(kafka_bootstrap):
    versions = asyncio.run(_api_versions(kafka_bootstrap))
    # Kafka 4.0 removed Fetch v0-v3 (KIP-896); 3.x brokers still offer v0.
    assert versions[FETCH][0] >= 4, f"not a Kafka 4.x broker: Fetch {versions[FETCH]}"
    assert PRODUCE in versions and METADATA in versions


def test_create_describe_produce_consume(admin, unique):
    topic = f"broker-check-{unique}"
    admin.create_topics(topic, partitions=3)
    assert admin.partition_count(topic) == 3

    sent = [(f"k{i}".encode(), f"v{i}".encode()) for i in range(30)]
    admin.produce(topic, sent)
    got = admin.consume_all(topic, min_count=30)

    assert sorted((r.key, r.value) for r in got) == sorted(sent)
    # Same key, same partition: the default partitioner hashes keys.
    by_key = {}
    for r in got:
        by_key.setdefault(r.key, set()).add(r.partition)
    assert all(len(parts) == 1 for parts in by_key.values())
