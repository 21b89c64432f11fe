"""Kafka client options from the settings, and failures explained by the setting to fix."""
from __future__ import annotations

import re
import ssl
from pathlib import Path

import faust
import pytest
from aiokafka.errors import KafkaConnectionError, SaslAuthenticationFailed, UnsupportedSaslMechanismError

from app.faust.credentials import faust_credentials
from app.kafka.client import classify, client_options, explain_failure, security_options
from app.settings import Settings, SettingsError
from tests.paths import ROOT

SASL_SSL = Settings(bootstrap_servers="b1:9094,b2:9094", security_protocol="SASL_SSL",
                    sasl_mechanism="SCRAM-SHA-512", sasl_username="lens", sasl_password="s3cret")


def test_plaintext_options_carry_no_credentials():
    assert client_options(Settings(bootstrap_servers="k:9092")) == {
        "bootstrap_servers": "k:9092", "security_protocol": "PLAINTEXT"}
    assert faust_credentials(Settings()) is None


def test_sasl_ssl_options_have_scram_credentials_and_a_verifying_tls_context():
    options = client_options(SASL_SSL)
    assert options["bootstrap_servers"] == "b1:9094,b2:9094"
    assert (options["security_protocol"], options["sasl_mechanism"]) == ("SASL_SSL", "SCRAM-SHA-512")
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == ("lens", "s3cret")
    context = options["ssl_context"]
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_sasl_plaintext_has_no_tls_context(mechanism):
    settings = SASL_SSL.replace(security_protocol="SASL_PLAINTEXT", sasl_mechanism=mechanism)
    options = security_options(settings)
    assert "ssl_context" not in options and options["sasl_mechanism"] == mechanism


def test_ssl_without_sasl_has_a_context_and_no_login():
    options = security_options(Settings(security_protocol="SSL"))
    assert isinstance(options["ssl_context"], ssl.SSLContext) and "sasl_mechanism" not in options


def test_faust_gets_the_same_credentials():
    credentials = faust_credentials(SASL_SSL)
    assert isinstance(credentials, faust.SASLCredentials)
    assert (credentials.protocol.value, credentials.mechanism.value) == ("SASL_SSL", "SCRAM-SHA-512")
    assert (credentials.username, credentials.password) == ("lens", "s3cret")
    assert credentials.ssl_context.verify_mode == ssl.CERT_REQUIRED
    assert isinstance(faust_credentials(Settings(security_protocol="SSL")), faust.SSLCredentials)


def test_a_bad_mechanism_or_a_key_without_certificate_is_refused_naming_the_variable():
    env = {"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": "p"}
    with pytest.raises(SettingsError, match="KAFKA_SASL_MECHANISM='GSSAPI' must be one of PLAIN, SCRAM-SHA-256"):
        Settings.from_env({**env, "KAFKA_SASL_MECHANISM": "GSSAPI"})
    with pytest.raises(SettingsError, match="KAFKA_SSL_CERTFILE='/no/such.pem' is not a readable file"):
        Settings.from_env({**env, "KAFKA_SSL_CERTFILE": "/no/such.pem"})
    key = str(Path(__file__))  # any readable file: the check is about the pair, not the content
    with pytest.raises(SettingsError, match="KAFKA_SSL_KEYFILE is set without KAFKA_SSL_CERTFILE"):
        Settings.from_env({**env, "KAFKA_SSL_KEYFILE": key})
    assert Settings.from_env({**env, "KAFKA_SASL_MECHANISM": "SCRAM-SHA-256"}).sasl_mechanism == "SCRAM-SHA-256"


def _cert_error(message: str) -> ssl.SSLCertVerificationError:
    exc = ssl.SSLCertVerificationError(1, f"[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: {message}")
    exc.verify_message = message
    return exc


def test_an_untrusted_certificate_names_the_ca_file_or_its_absence():
    settings = SASL_SSL.replace(ssl_cafile="/etc/lensbridge/ca.pem")
    text = classify(_cert_error("self-signed certificate in certificate chain"), settings)
    assert "not trusted by KAFKA_SSL_CAFILE=/etc/lensbridge/ca.pem" in text
    assert "self-signed certificate in certificate chain" in text and "Point KAFKA_SSL_CAFILE at" in text
    assert "KAFKA_SSL_CAFILE is not set" in classify(_cert_error("unable to get local issuer"), SASL_SSL)


def test_a_refused_login_names_user_mechanism_and_password_variable_but_not_the_password():
    text = classify(SaslAuthenticationFailed("invalid credentials with SASL mechanism SCRAM-SHA-512"), SASL_SSL)
    assert "KAFKA_SASL_USERNAME='lens'" in text and "KAFKA_SASL_MECHANISM=SCRAM-SHA-512" in text
    assert "KAFKA_SASL_PASSWORD" in text and "s3cret" not in text


def test_an_unsupported_mechanism_and_a_protocol_mismatch_are_named():
    assert "does not accept KAFKA_SASL_MECHANISM=SCRAM-SHA-512" in classify(UnsupportedSaslMechanismError(), SASL_SSL)
    for exc in (ConnectionResetError(), KafkaConnectionError("Connection at b1:9094 closed")):
        assert "KAFKA_SECURITY_PROTOCOL=SASL_SSL most likely does not match" in classify(exc, SASL_SSL)
    assert "TLS handshake failed" in classify(ssl.SSLError(1, "wrong version number"), SASL_SSL)


def test_other_failures_are_not_about_security():
    for exc in (ConnectionRefusedError(111, "refused"), KafkaConnectionError("Unable to bootstrap from [...]"),
                TimeoutError()):
        assert classify(exc, SASL_SSL) is None


def test_explain_failure_prefers_the_classified_cause():
    text = explain_failure(SaslAuthenticationFailed("bad"), SASL_SSL)
    assert text.startswith("cannot use Kafka at KAFKA_BOOTSTRAP_SERVERS=b1:9094,b2:9094: the broker refused")
    # No bootstrap address with a port: nothing to probe, so the generic reason stays.
    text = explain_failure(KafkaConnectionError("Unable to bootstrap"), SASL_SSL.replace(bootstrap_servers="nohost"))
    assert "cannot reach Kafka at KAFKA_BOOTSTRAP_SERVERS=nohost (KAFKA_SECURITY_PROTOCOL=SASL_SSL)" in text


def _call_args(text: str, start: int) -> str:
    depth, i = 1, start
    while depth and i < len(text):
        depth += {"(": 1, ")": -1}.get(text[i], 0)
        i += 1
    return text[start:i]


def test_every_kafka_client_in_app_takes_the_shared_options():
    """A client built from a bare `bootstrap_servers=` would connect in plaintext on a secured cluster."""
    offenders, seen = [], 0
    for path in sorted((ROOT / "app").rglob("*.py")):
        text = path.read_text()
        for match in re.finditer(r"AIOKafka(?:Producer|Consumer|AdminClient)\(", text):
            seen += 1
            args = _call_args(text, match.end())
            if not re.search(r"\*\*\(?(client_options\(|security|kafka\b)", args):
                offenders.append(f"{path.relative_to(ROOT)}:{text.count(chr(10), 0, match.start()) + 1}")
    assert seen >= 6 and offenders == []


def test_a_refused_client_certificate_names_the_certificate_settings():
    alert = ssl.SSLError(1, "[SSL: SSLV3_ALERT_BAD_CERTIFICATE] sslv3 alert bad certificate (_ssl.c:2580)")
    ssl_only = Settings(security_protocol="SSL")
    text = classify(alert, ssl_only)
    assert "requires a client certificate (mTLS) and none is set" in text
    assert "KAFKA_SSL_CERTFILE and KAFKA_SSL_KEYFILE" in text
    text = classify(alert, ssl_only.replace(ssl_certfile="/etc/lb/client.pem"))
    assert "refused the client certificate KAFKA_SSL_CERTFILE=/etc/lb/client.pem" in text
    unknown_ca = ssl.SSLError(1, "[SSL: TLSV1_ALERT_UNKNOWN_CA] tlsv1 alert unknown ca")
    assert "client certificate" in classify(unknown_ca, ssl_only)


def test_a_denied_operation_names_the_user_and_the_group():
    from aiokafka.errors import ClusterAuthorizationFailedError

    text = classify(ClusterAuthorizationFailedError(), SASL_SSL)
    assert "denied KAFKA_SASL_USERNAME='lens'" in text and "LENSBRIDGE_APP_ID='lensbridge'" in text
