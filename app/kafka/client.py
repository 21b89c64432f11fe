"""How every Kafka client of the project connects, built from the settings in one place.

Faust (`app/faust/app.py`), the worker's admin client (`app/kafka/topics.py`), `replay`, `alerts`,
`simulate` and the bench all take their security options from `client_options`, so a
secured cluster (SSL, SASL_PLAINTEXT, SASL_SSL with PLAIN or SCRAM) works for all of them.
`explain_failure` turns a failed start into a sentence naming the setting to fix.
"""
from __future__ import annotations

import asyncio
import ssl
import struct
from typing import Any

from app.settings import Settings, SettingsError

# aiokafka error names (aiokafka.errors) that mean "the broker refused these credentials".
_AUTH_ERRORS = ("SaslAuthenticationFailed", "AuthenticationFailedError", "IllegalSaslStateError")
_MECHANISM_ERRORS = ("UnsupportedSaslMechanismError", "AuthenticationMethodNotSupported")


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context for SSL and SASL_SSL (None otherwise): the system's trusted CAs, or only
    KAFKA_SSL_CAFILE when set; a client certificate when KAFKA_SSL_CERTFILE is set (mTLS).
    Host names are always checked: the broker's certificate must name the host it is reached at."""
    if not settings.security_protocol.endswith("SSL"):
        return None
    try:
        context = ssl.create_default_context(cafile=settings.ssl_cafile or None)
    except ssl.SSLError as exc:
        raise SettingsError(f"KAFKA_SSL_CAFILE={settings.ssl_cafile!r} holds no usable PEM certificate "
                            f"({exc}); give the CA bundle in PEM") from None
    if settings.ssl_certfile:
        try:  # an encrypted key would make OpenSSL prompt on the terminal: refuse instead
            context.load_cert_chain(settings.ssl_certfile, settings.ssl_keyfile or None, password=_no_password)
        except (ssl.SSLError, _EncryptedKey) as exc:
            raise SettingsError(f"KAFKA_SSL_CERTFILE={settings.ssl_certfile!r} / KAFKA_SSL_KEYFILE="
                                f"{settings.ssl_keyfile!r}: not a PEM certificate with its unencrypted private "
                                f"key ({exc}); give both in PEM, the key without a passphrase") from None
    return context


class _EncryptedKey(Exception):
    pass


def _no_password() -> str:
    raise _EncryptedKey("the private key is encrypted")


def security_options(settings: Settings) -> dict[str, Any]:
    """aiokafka's security keyword arguments (producer, consumer and admin client take the same)."""
    protocol = settings.security_protocol
    options: dict[str, Any] = {"security_protocol": protocol}
    context = ssl_context(settings)
    if context is not None:
        options["ssl_context"] = context
    if protocol.startswith("SASL"):
        options.update(sasl_mechanism=settings.sasl_mechanism, sasl_plain_username=settings.sasl_username,
                       sasl_plain_password=settings.sasl_password)
    return options


def client_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for AIOKafkaProducer / AIOKafkaConsumer / AIOKafkaAdminClient."""
    return {"bootstrap_servers": settings.bootstrap_servers, **security_options(settings)}


def classify(exc: BaseException, settings: Settings) -> str | None:
    """A sentence naming the setting behind a connection failure, or None when it is not about
    security (then the broker is most likely unreachable)."""
    name = type(exc).__name__
    protocol = settings.security_protocol
    if isinstance(exc, SettingsError):
        return str(exc)
    if isinstance(exc, ssl.SSLCertVerificationError):
        where = f"KAFKA_SSL_CAFILE={settings.ssl_cafile}" if settings.ssl_cafile else \
            "the system's trusted CAs (KAFKA_SSL_CAFILE is not set)"
        return (f"the broker's TLS certificate is not trusted by {where}: {exc.verify_message or exc}. "
                f"Point KAFKA_SSL_CAFILE at the PEM file of the CA that signed the broker's certificate "
                f"(and reach the broker by a host name or IP its certificate names)")
    if isinstance(exc, ssl.SSLError) and _client_certificate_refused(exc):
        reason = getattr(exc, "reason", None) or exc
        if settings.ssl_certfile:
            return (f"the broker refused the client certificate KAFKA_SSL_CERTFILE={settings.ssl_certfile} "
                    f"({reason}). Use a certificate signed by a CA the broker trusts, with its key "
                    f"in KAFKA_SSL_KEYFILE")
        return (f"the broker requires a client certificate (mTLS) and none is set ({reason}). "
                f"Set KAFKA_SSL_CERTFILE and KAFKA_SSL_KEYFILE to the PEM files of one the broker trusts")
    if isinstance(exc, ssl.SSLError):
        return (f"the TLS handshake failed ({exc}). Check KAFKA_SECURITY_PROTOCOL={protocol} against the "
                f"listener at KAFKA_BOOTSTRAP_SERVERS={settings.bootstrap_servers} (SSL/SASL_SSL need a TLS "
                f"listener), and KAFKA_SSL_CERTFILE/KAFKA_SSL_KEYFILE if the broker asks for a client certificate")
    if name in _AUTH_ERRORS:
        return (f"the broker refused the SASL login of KAFKA_SASL_USERNAME={settings.sasl_username!r} "
                f"with KAFKA_SASL_MECHANISM={settings.sasl_mechanism} ({exc}). Check KAFKA_SASL_USERNAME and "
                f"KAFKA_SASL_PASSWORD, and that the user exists for that mechanism")
    if _closed(exc):
        return (f"the broker accepted the connection, then closed it during the handshake: "
                f"KAFKA_SECURITY_PROTOCOL={protocol} most likely does not match that listener (a TLS listener "
                f"needs SSL or SASL_SSL, a SASL listener SASL_PLAINTEXT or SASL_SSL, a plain one PLAINTEXT)")
    if name.endswith("AuthorizationFailedError"):
        who = f"KAFKA_SASL_USERNAME={settings.sasl_username!r}" if protocol.startswith("SASL") else "this client"
        return (f"the broker denied {who} an operation ({exc}). Grant it, in the cluster's ACLs, Describe and "
                f"Create on the cluster and the topics, Read/Write on the topics and Read on the consumer group "
                f"LENSBRIDGE_APP_ID={settings.app_id!r} (docs/DEPLOY.md), or create the topics by hand")
    if name in _MECHANISM_ERRORS:
        return (f"the broker does not accept KAFKA_SASL_MECHANISM={settings.sasl_mechanism} ({exc}). "
                f"Set KAFKA_SASL_MECHANISM to one the listener enables (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)")
    return None


def _client_certificate_refused(exc: ssl.SSLError) -> bool:
    """The broker's TLS alert about our certificate (bad, missing, unknown CA), not our check of its."""
    text = str(exc).upper()
    return "ALERT" in text and ("CERTIFICATE" in text or "UNKNOWN_CA" in text)


def _closed(exc: BaseException) -> bool:
    return isinstance(exc, ConnectionResetError) or (
        type(exc).__name__ == "KafkaConnectionError" and str(exc).endswith(" closed"))


async def _client_certificate_alert(host: str, port: int, settings: Settings,
                                    timeout_s: float) -> ssl.SSLError | None:
    """The broker's TLS alert refusing our client certificate, if that is why it closed the
    connection (aiokafka only says "closed"). TLS 1.2 first: there the alert ends the handshake
    itself; in TLS 1.3 it comes after the handshake, and a read may see it or just the close."""
    for tls12 in (True, False):
        context = ssl_context(settings)
        if tls12:
            context.maximum_version = ssl.TLSVersion.TLSv1_2
        exc = await _tls_probe(host, port, context, timeout_s)
        if isinstance(exc, ssl.SSLError) and _client_certificate_refused(exc):
            return exc
    return None


async def _tls_probe(host: str, port: int, context: ssl.SSLContext, timeout_s: float) -> BaseException | None:
    """One ApiVersions request over TLS, read by hand; returns what failed, if anything."""
    request = struct.pack(">hhih", 18, 0, 1, 5) + b"probe"  # ApiVersions v0, correlation id 1
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port, ssl=context), timeout_s)
        try:
            writer.write(struct.pack(">i", len(request)) + request)
            await writer.drain()
            await asyncio.wait_for(reader.readexactly(4), timeout_s)
        finally:
            writer.close()
    except Exception as exc:  # the alert is the answer
        return exc
    return None


async def diagnose(settings: Settings, timeout_s: float = 10.0) -> str | None:
    """Opens one connection to each bootstrap server with the configured security and returns
    the first security failure explained (None if none is about security). aiokafka's own
    bootstrap logs the cause and raises a bare "Unable to bootstrap", so the cause is re-read here."""
    from aiokafka.conn import create_conn
    from aiokafka.protocol.metadata import MetadataRequest

    options = security_options(settings)
    for server in settings.bootstrap_servers.split(","):
        host, _, port = server.strip().rpartition(":")
        if not host or not port.isdigit():
            continue
        host, conn = host.strip("[]"), None
        try:  # connect (TLS, SASL), then the first request: a SASL listener refuses it without a login
            conn = await asyncio.wait_for(create_conn(host, int(port), **options), timeout_s)
            await asyncio.wait_for(conn.send(MetadataRequest([])), timeout_s)
        except Exception as exc:  # every failure is a candidate cause
            if _closed(exc) and "ssl_context" in options:
                exc = await _client_certificate_alert(host, int(port), settings, timeout_s) or exc
            message = classify(exc, settings)
            if message:
                return message
        finally:
            if conn is not None:
                conn.close()
    return None


def explain_failure(exc: BaseException, settings: Settings) -> str:
    """What a person reads when the worker cannot start talking to Kafka."""
    message = classify(exc, settings)
    if message is None:
        try:
            message = asyncio.run(diagnose(settings))
        except Exception:  # the diagnosis is best effort; the original error is still reported
            message = None
    if message:
        return f"cannot use Kafka at KAFKA_BOOTSTRAP_SERVERS={settings.bootstrap_servers}: {message}"
    return (f"cannot reach Kafka at KAFKA_BOOTSTRAP_SERVERS={settings.bootstrap_servers} "
            f"(KAFKA_SECURITY_PROTOCOL={settings.security_protocol}): {exc!r}. Start a broker (make kafka) "
            f"or point KAFKA_BOOTSTRAP_SERVERS at one")
