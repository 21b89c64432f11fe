"""A pause after a failed metadata refresh, while the broker is unreachable.

aiokafka (0.14) refreshes cluster metadata without backoff when the refresh fails: the
fetcher asks for new metadata, the refresh fails at once (connection refused), and the
fetcher asks again. Measured with the broker stopped for 60 s: ~6,000 log lines a second
("Unable connect to node", "Unable to update metadata"), 40 MB of log a minute and a core
spinning in the consumer thread. Waiting `FAILED_REFRESH_PAUSE_S` after a failed refresh
bounds both; a healthy cluster never takes the pause (refreshes that succeed return at once),
and after an outage the first successful refresh is at most one pause late.
"""
from __future__ import annotations

import asyncio
import functools

from aiokafka.client import AIOKafkaClient

FAILED_REFRESH_PAUSE_S = 0.5
_pause = asyncio.sleep  # replaced in tests


def install() -> None:
    """Patch AIOKafkaClient once per process (every client Faust builds is one)."""
    original = AIOKafkaClient._metadata_update
    if getattr(original, "lensbridge_paced", False):
        return

    @functools.wraps(original)
    async def paced(self, cluster_metadata, topics):
        updated = await original(self, cluster_metadata, topics)
        if not updated:
            await _pause(FAILED_REFRESH_PAUSE_S)
        return updated

    paced.lensbridge_paced = True
    AIOKafkaClient._metadata_update = paced
