"""Faust's broker credentials for KAFKA_SECURITY_PROTOCOL: the same TLS context and SASL
options as every other client of the project (app/kafka/client.py)."""
from __future__ import annotations

from typing import Any

import faust

from app.kafka.client import ssl_context
from app.settings import Settings


def faust_credentials(settings: Settings) -> Any:
    """Faust's `broker_credentials` for the same options (None for PLAINTEXT)."""
    protocol = settings.security_protocol
    if protocol == "PLAINTEXT":
        return None
    if protocol.startswith("SASL"):
        credentials = faust.SASLCredentials(username=settings.sasl_username, password=settings.sasl_password,
                                            mechanism=settings.sasl_mechanism, ssl_context=ssl_context(settings))
        return credentials
    return faust.SSLCredentials(ssl_context(settings))
