"""Settings read from an explicit environment mapping (never os.environ at import time)."""
import re

import pytest

from app.settings import Settings, SettingsError

MB = 1024 * 1024


def test_fetch_bytes_follow_standby_replicas_unless_given():
    assert Settings.from_env({}).fetch_bytes == 16 * MB
    assert Settings.from_env({"LENSBRIDGE_STANDBY_REPLICAS": "1"}).fetch_bytes == 1 * MB
    given = {"LENSBRIDGE_STANDBY_REPLICAS": "1", "LENSBRIDGE_CONSUMER_FETCH_BYTES": str(4 * MB)}
    assert Settings.from_env(given).fetch_bytes == 4 * MB


def test_a_tiny_fetch_size_is_refused_naming_the_variable():
    with pytest.raises(SettingsError, match="LENSBRIDGE_CONSUMER_FETCH_BYTES=1000"):
        Settings.from_env({"LENSBRIDGE_CONSUMER_FETCH_BYTES": "1000"})


def test_exposure_defaults_listen_nowhere_they_need_not():
    settings = Settings.from_env({})
    assert settings.web_enabled is False and settings.web_bind == "127.0.0.1"
    assert settings.replication_factor == -1  # the broker's default.replication.factor
    on = Settings.from_env({"LENSBRIDGE_WEB_ENABLED": "true", "LENSBRIDGE_WEB_BIND": "0.0.0.0",
                            "LENSBRIDGE_REPLICATION_FACTOR": "3"})
    assert on.web_enabled is True and on.web_bind == "0.0.0.0" and on.replication_factor == 3


@pytest.mark.parametrize("env, needle", [
    ({"LENSBRIDGE_WEB_ENABLED": "maybe"}, "LENSBRIDGE_WEB_ENABLED='maybe' is not a boolean"),
    ({"LENSBRIDGE_REPLICATION_FACTOR": "0"}, "LENSBRIDGE_REPLICATION_FACTOR=0"),
    ({"LENSBRIDGE_REPLICATION_FACTOR": "-2"}, "LENSBRIDGE_REPLICATION_FACTOR='-2' must be at least -1"),
    ({"LENSBRIDGE_MAX_LABEL_VALUES": "0"}, "LENSBRIDGE_MAX_LABEL_VALUES='0' must be at least 1"),
])
def test_bad_exposure_and_label_settings_name_the_variable(env, needle):
    with pytest.raises(SettingsError, match=re.escape(needle)):
        Settings.from_env(env)


def test_otlp_formats_default_the_topic_to_the_collectors_traces_topic():
    assert Settings.from_env({"LENSBRIDGE_REQUESTS_FORMAT": "otlp_proto"}).topic_requests == "otlp_spans"
    assert Settings.from_env({"LENSBRIDGE_REQUESTS_FORMAT": "otlp_json"}).topic_requests == "otlp_spans"
    chosen = {"LENSBRIDGE_REQUESTS_FORMAT": "otlp_json", "LENSBRIDGE_TOPIC_REQUESTS": "traces"}
    assert Settings.from_env(chosen).topic_requests == "traces"
    assert Settings.from_env({}).topic_requests == "requests"


@pytest.mark.parametrize("env, named", [
    ({"LENSBRIDGE_REQUESTS_FORMAT": "otlp"}, "LENSBRIDGE_REQUESTS_FORMAT='otlp' must be one of lensbridge"),
    ({"LENSBRIDGE_REQUESTS_FORMAT": "fields"}, "needs LENSBRIDGE_REQUESTS_FIELDS"),
    ({"LENSBRIDGE_REQUESTS_FIELDS": "service=cluster"}, "set LENSBRIDGE_REQUESTS_FORMAT=fields"),
    ({"LENSBRIDGE_OTLP_SPAN_KINDS": "server,client"}, "LENSBRIDGE_OTLP_SPAN_KINDS='server,client'"),
    ({"LENSBRIDGE_OTLP_SPAN_KINDS": " , "}, "comma-separated list of server, consumer"),
])
def test_request_format_settings_name_the_variable_and_the_fix(env, named):
    with pytest.raises(SettingsError, match=re.escape(named)):
        Settings.from_env(env)


def test_span_kinds_are_read_case_blind_and_once():
    assert Settings.from_env({"LENSBRIDGE_OTLP_SPAN_KINDS": "SERVER, consumer,server"}).otlp_span_kinds == (
        "server", "consumer")
