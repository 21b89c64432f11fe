"""Settings read from an explicit environment mapping (never os.environ at import time)."""
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
