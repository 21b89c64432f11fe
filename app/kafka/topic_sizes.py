"""`max.message.bytes` per topic: what the worker creates topics with, and the start check.

The bounds are app/core/sizes.py's; here they are mapped onto the topic names of the
settings, Faust's changelog topics included, and compared with what the broker says
(`describe_configs` returns the effective value: the topic's override, else the broker's
`message.max.bytes`).
"""
from __future__ import annotations

import logging

from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import for_code

from app.core import sizes
from app.core.sizes import MAX_STATE_BYTES, size_problem, topic_limits
from app.settings import Settings

log = logging.getLogger("lensbridge.topics")

MAX_MESSAGE_BYTES = "max.message.bytes"
STATE_TABLES = ("sre-state", "cx-state", "joiner-state")  # app/faust/app.py's tables


def changelog_topic(settings: Settings, table: str) -> str:
    """Faust's name for a table's changelog topic."""
    return f"{settings.app_id}-{table}-changelog"


def record_limits(settings: Settings, state_bytes: int = MAX_STATE_BYTES) -> dict[str, int]:
    """Topic -> the `max.message.bytes` it needs for what the worker writes there."""
    kinds = topic_limits(settings.max_message_bytes, state_bytes)
    limits = {settings.topic_dlq: kinds["dlq"], settings.topic_summaries: kinds["summaries"],
              settings.topic_windows: kinds["windows"], settings.topic_alerts: kinds["alerts"]}
    for table in STATE_TABLES:
        limits[changelog_topic(settings, table)] = kinds["changelog"]
    return limits


def producer_max_request_size(settings: Settings) -> int:
    """The producer must accept every record a topic accepts (it checks one record at a time)."""
    return max(record_limits(settings).values())


def topic_configs(settings: Settings, topic: str) -> dict[str, str]:
    """The configs to create `topic` with (none for the input topics)."""
    needed = record_limits(settings).get(topic)
    return {} if needed is None else {MAX_MESSAGE_BYTES: str(needed)}


def effective_limits(responses: list) -> tuple[dict[str, int | None], dict[str, str]]:
    """(topic -> effective max.message.bytes, topic -> why it could not be read) from
    describe_configs responses."""
    found: dict[str, int | None] = {}
    errors: dict[str, str] = {}
    for response in responses:
        for error_code, message, _type, name, entries in response.resources:
            if error_code != 0:
                errors[name] = f"error {error_code}: {message or for_code(error_code).__name__}"
                continue
            found[name] = next((int(entry[1]) for entry in entries
                                if entry[0] == MAX_MESSAGE_BYTES and entry[1] is not None), None)
    return found, errors


def size_problems(settings: Settings, effective: dict[str, int | None]) -> list[str]:
    """One error text per existing topic whose limit is below what the worker writes there."""
    problems = []
    for topic, needed in record_limits(settings).items():
        if topic in effective:
            problem = size_problem(topic, effective[topic], needed)
            if problem:
                problems.append(problem)
    return problems


def input_notes(settings: Settings, effective: dict[str, int | None]) -> list[str]:
    """Input topics that accept messages the decoder dead-letters as oversize (a note, not an error)."""
    notes = []
    for topic in (settings.topic_requests, settings.topic_rum):
        limit = effective.get(topic)
        # The limit counts the record batch around a value: the broker default (1048588) is
        # no bigger than the default LENSBRIDGE_MAX_MESSAGE_BYTES (1048576) plus that.
        if limit is not None and limit - sizes.BATCH_OVERHEAD_BYTES > settings.max_message_bytes:
            notes.append(f"input topic {topic!r} accepts messages of up to {limit} bytes; those above "
                         f"LENSBRIDGE_MAX_MESSAGE_BYTES={settings.max_message_bytes} are dead-lettered as "
                         f"oversize (raise LENSBRIDGE_MAX_MESSAGE_BYTES to fold them)")
    return notes


async def describe_limits(admin, topics: list[str]) -> dict[str, int | None]:
    """Effective max.message.bytes of existing `topics` (one DescribeConfigs request). A topic
    whose configs cannot be read (no DescribeConfigs ACL) is left out with a warning: the
    outbox still turns records it refuses into dead letters."""
    if not topics:
        return {}
    resources = [ConfigResource(ConfigResourceType.TOPIC, name, configs={MAX_MESSAGE_BYTES: None})
                 for name in topics]
    found, errors = effective_limits(await admin.describe_configs(resources))
    for name, why in sorted(errors.items()):
        log.warning("cannot read max.message.bytes of topic %r (%s); its size limit is not checked. "
                    "Grant the worker's principal DescribeConfigs on it to have it checked", name, why)
    return found


async def check_sizes(admin, settings: Settings, existing: list[str]) -> list[str]:
    """Check the existing topics' limits; returns the problems (empty: all fit). Logs the
    input-topic notes."""
    watched = set(record_limits(settings)) | {settings.topic_requests, settings.topic_rum}
    effective = await describe_limits(admin, sorted(t for t in existing if t in watched))
    for note in input_notes(settings, effective):
        log.info("%s", note)
    return size_problems(settings, effective)
