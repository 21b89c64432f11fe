"""The Faust app is built listening nowhere it need not, with the resolved replication factor."""
import pytest
from prometheus_client import CollectorRegistry

from app.faust.app import build_app
from app.observe.metrics import Metrics
from app.settings import Settings


def _conf(**settings):
    return build_app(Settings(**settings), Metrics(CollectorRegistry())).conf


def test_web_server_is_off_by_default_and_changelogs_use_the_resolved_replication(tmp_path):
    conf = _conf(replication_factor=3, data_dir=str(tmp_path))
    assert conf.web_enabled is False
    assert conf.topic_replication_factor == 3  # changelogs and every topic Faust declares


def test_web_server_when_asked_for_binds_loopback_without_the_revealing_views(tmp_path):
    conf = _conf(replication_factor=1, web_enabled=True, data_dir=str(tmp_path))
    assert conf.web_enabled is True and conf.web_bind == "127.0.0.1"
    assert not (conf.web_tables_enabled or conf.web_router_enabled or conf.web_graph_enabled
                or conf.web_stats_enabled)


def test_an_unresolved_broker_default_is_refused(tmp_path):
    with pytest.raises(ValueError, match="LENSBRIDGE_REPLICATION_FACTOR=-1 must be resolved"):
        _conf(data_dir=str(tmp_path))
