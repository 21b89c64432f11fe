"""Resolving LENSBRIDGE_REPLICATION_FACTOR=-1 from the broker's answer (a fake admin client)."""
import asyncio
from types import SimpleNamespace

import pytest

from app.kafka.topics import TopicLayoutError, broker_replication_factor


class FakeAdmin:
    def __init__(self, resources):
        self.resources, self.asked = resources, []

    async def describe_cluster(self):
        return {"brokers": [{"node_id": 7, "host": "b", "port": 9092, "rack": None}], "controller_id": 7}

    async def describe_configs(self, config_resources):
        self.asked += [(r.resource_type.name, r.name, r.configs) for r in config_resources]
        return [SimpleNamespace(resources=self.resources)]


def test_the_brokers_default_replication_factor_is_read_from_one_broker():
    admin = FakeAdmin([(0, "", 4, "7", [("default.replication.factor", "3", True, 4, False, [])])])
    assert asyncio.run(broker_replication_factor(admin)) == 3
    assert admin.asked == [("BROKER", "7", {"default.replication.factor": None})]


def test_a_refused_describe_names_the_setting_to_set_instead():
    admin = FakeAdmin([(29, "Cluster authorization failed.", 4, "7", [])])
    with pytest.raises(TopicLayoutError, match="set LENSBRIDGE_REPLICATION_FACTOR"):
        asyncio.run(broker_replication_factor(admin))
