"""Create missing topics and check the partition layout the worker relies on."""
from __future__ import annotations

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from app.kafka.client import client_options
from app.kafka.topic_sizes import check_sizes, topic_configs
from app.settings import Settings

TOPIC_ALREADY_EXISTS = 36


class TopicLayoutError(RuntimeError):
    """An existing topic has a partition count (or max.message.bytes) the worker cannot use;
    the message says the fix."""


def wanted_topics(settings: Settings) -> dict[str, int]:
    """Topic -> partitions. Summaries need one partition: the joiner must see every partial."""
    n = settings.partitions
    return {
        settings.topic_requests: n,
        settings.topic_rum: n,
        settings.topic_summaries: 1,
        settings.topic_windows: n,
        settings.topic_alerts: n,
        settings.topic_dlq: n,
    }


def check_layout(wanted: dict[str, int], existing: dict[str, int], settings: Settings) -> None:
    for name, count in existing.items():
        if name not in wanted or count == wanted[name]:
            continue
        if name in (settings.topic_requests, settings.topic_rum):
            raise TopicLayoutError(
                f"topic {name!r} has {count} partitions but LENSBRIDGE_PARTITIONS={settings.partitions}; "
                f"set LENSBRIDGE_PARTITIONS={count} (state tables must match the input topics)")
        if name == settings.topic_summaries:
            raise TopicLayoutError(
                f"topic {name!r} has {count} partitions; the summaries topic must have exactly 1. "
                f"Point LENSBRIDGE_TOPIC_SUMMARIES at a new topic name")


BROKER_DEFAULT = -1  # LENSBRIDGE_REPLICATION_FACTOR's "use the broker's default.replication.factor"


async def broker_replication_factor(admin: AIOKafkaAdminClient) -> int:
    """The cluster's `default.replication.factor`, as one broker reports it.

    aiokafka's CreateTopics stops at v3, which has no "broker default" (-1), and Faust's
    `topic_replication_factor` must be a count: so the worker asks once and uses the number."""
    cluster = await admin.describe_cluster()
    broker = str(cluster["brokers"][0]["node_id"])
    wanted = "default.replication.factor"
    responses = await admin.describe_configs(
        [ConfigResource(ConfigResourceType.BROKER, broker, {wanted: None})])
    for response in responses:
        for error_code, error_message, _, _, entries in response.resources:
            if error_code:
                raise TopicLayoutError(
                    f"cannot read {wanted} from broker {broker} ({error_message or error_code}); "
                    f"set LENSBRIDGE_REPLICATION_FACTOR to the replication factor your topics need")
            for entry in entries:
                if entry[0] == wanted:
                    return int(entry[1])
    raise TopicLayoutError(f"broker {broker} did not report {wanted}; set LENSBRIDGE_REPLICATION_FACTOR")


async def with_replication_factor(settings: Settings, client_kwargs: dict | None = None) -> Settings:
    """`settings` with LENSBRIDGE_REPLICATION_FACTOR resolved to a count (asks the broker for -1)."""
    if settings.replication_factor != BROKER_DEFAULT:
        return settings
    admin = AIOKafkaAdminClient(**{**client_options(settings), **(client_kwargs or {})})
    await admin.start()
    try:
        return settings.replace(replication_factor=await broker_replication_factor(admin))
    finally:
        await admin.close()


async def ensure_topics(settings: Settings, client_kwargs: dict | None = None) -> list[str]:
    """Create the topics that do not exist yet; returns their names."""
    admin = AIOKafkaAdminClient(**{**client_options(settings), **(client_kwargs or {})})
    await admin.start()
    try:
        wanted = wanted_topics(settings)
        # Describe only topics that exist: a metadata request for a missing topic makes a broker
        # with auto.create.topics.enable create it with its default partition count.
        listed = list(await admin.list_topics())
        present = [name for name in listed if name in wanted]
        described = await admin.describe_topics(present) if present else []
        existing = {t["topic"]: len(t["partitions"]) for t in described if t.get("error_code", 0) == 0}
        check_layout(wanted, existing, settings)
        size_problems = await check_sizes(admin, settings, listed)  # max.message.bytes of existing topics
        if size_problems:
            raise TopicLayoutError("\n".join(size_problems))
        missing = [name for name in wanted if name not in existing]
        if missing:
            replicas = settings.replication_factor
            if replicas == BROKER_DEFAULT:
                replicas = await broker_replication_factor(admin)
            response = await admin.create_topics([
                NewTopic(name, wanted[name], replicas, topic_configs=topic_configs(settings, name))  # max.message.bytes
                for name in missing])
            failed = [(t[0], t[1], t[2] if len(t) > 2 else "") for t in response.topic_errors
                      if t[1] not in (0, TOPIC_ALREADY_EXISTS)]
            if failed:
                raise TopicLayoutError(f"could not create topics {failed}; create them by hand "
                                       f"(partitions: {dict((n, wanted[n]) for n, _, _ in failed)})")
        return missing
    finally:
        await admin.close()
