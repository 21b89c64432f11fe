"""deploy/compose/docker-compose.yml: parses, references only files that exist, and wires the
services the way the worker, Prometheus and Grafana expect (no Docker engine needed)."""
from __future__ import annotations

import json

import pytest
import yaml

from app.settings import Settings
from tests.paths import ROOT

COMPOSE_DIR = ROOT / "deploy" / "compose"
COMPOSE = COMPOSE_DIR / "docker-compose.yml"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())  # also resolves the x-* anchors and << merges


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def _local(path: str) -> bool:
    return path.startswith((".", "/")) or "/" in path.split(":")[0]


def test_the_stack_has_every_piece(services):
    assert {"kafka", "worker-1", "worker-2", "simulator", "prometheus", "grafana"} <= set(services)
    assert not [s for s in services.values() if "zookeeper" in str(s.get("image", ""))]


def test_kafka_is_apache_kafka_4_in_kraft_mode(services):
    kafka = services["kafka"]
    image, tag = kafka["image"].split(":")
    assert image == "apache/kafka" and tag.split(".")[0] == "4"
    env = kafka["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"].startswith(f"{env['KAFKA_NODE_ID']}@kafka:")
    assert len(env["CLUSTER_ID"]) == 22  # a base64 UUID, as kafka-storage.sh format wants
    assert "kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]
    assert "test" in kafka["healthcheck"]


def test_every_referenced_local_file_exists(services):
    checked = 0
    for name, service in services.items():
        build = service.get("build")
        if build:
            context = (COMPOSE_DIR / build["context"]).resolve()
            assert (context / build.get("dockerfile", "Dockerfile")).is_file(), name
            checked += 1
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if _local(source):
                assert (COMPOSE_DIR / source).exists(), f"{name}: volume source {source} does not exist"
                checked += 1
        for item in service.get("env_file", []):
            assert (COMPOSE_DIR / item).is_file(), f"{name}: env_file {item}"
    assert checked >= 4


def test_depends_on_names_services_and_waits_for_health(services):
    for name, service in services.items():
        depends = service.get("depends_on", {})
        for target in depends:
            assert target in services, f"{name} depends on unknown service {target}"
        if isinstance(depends, dict):
            for target, rule in depends.items():
                assert rule["condition"] in ("service_started", "service_healthy", "service_completed_successfully")
                if rule["condition"] == "service_healthy":
                    health = services[target].get("healthcheck", {})
                    assert not health.get("disable"), f"{name} waits for {target}, whose health check is off"
    assert services["worker-1"]["depends_on"]["kafka"]["condition"] == "service_healthy"


def test_lensbridge_services_share_valid_settings_and_the_demo_timing(services):
    lensbridge = {n: s for n, s in services.items() if s.get("image", "").startswith("lensbridge")}
    assert {"worker-1", "worker-2", "simulator"} <= set(lensbridge)
    envs = {n: {k: str(v) for k, v in s["environment"].items()} for n, s in lensbridge.items()}
    first = next(iter(envs.values()))
    for name, env in envs.items():
        Settings.from_env(env)  # raises SettingsError naming the variable
        assert env == first, f"{name}: same brokers, topics and app id as the others"
    assert services["simulator"]["command"][:1] == ["simulate"]
    scenario_path = services["simulator"]["command"][services["simulator"]["command"].index("--scenario") + 1]
    scenario = json.loads((ROOT / scenario_path).read_text())
    assert int(first["LENSBRIDGE_WINDOW_SECONDS"]) == scenario["window_s"]
    assert "COPY scenarios" in (ROOT / "Dockerfile").read_text()  # the image carries the scenario
    # the broker's default partition count matches, in case the simulator creates a topic first
    assert int(services["kafka"]["environment"]["KAFKA_NUM_PARTITIONS"]) == int(first["LENSBRIDGE_PARTITIONS"])


def test_prometheus_scrapes_both_workers_with_our_rules(services):
    prometheus = services["prometheus"]
    [mount] = [v for v in prometheus["volumes"] if v.split(":")[1] == "/etc/prometheus"]
    config_dir = (COMPOSE_DIR / mount.split(":")[0]).resolve()
    assert config_dir == ROOT / "deploy" / "prometheus"
    config = yaml.safe_load((config_dir / "prometheus.yml").read_text())
    [job] = [j for j in config["scrape_configs"] if j["job_name"] == "lensbridge"]
    targets = {t for group in job["static_configs"] for t in group["targets"]}
    workers = {n for n, s in services.items() if s.get("command") == ["worker"]}
    assert {t.split(":")[0] for t in targets} == workers
    assert {t.split(":")[1] for t in targets} == {"9108"}  # the image's LENSBRIDGE_METRICS_PORT
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    assert all((config_dir / f).is_file() for f in config["rule_files"])


def test_host_ports_do_not_clash(services):
    published = [p.rsplit(":", 2)[-2] for s in services.values() for p in s.get("ports", [])]
    assert len(published) == len(set(published)), published


def test_every_published_port_is_bound_to_loopback(services):
    ports = [(name, p) for name, s in services.items() for p in s.get("ports", [])]
    assert ports, "the demo publishes its UIs and the broker to the host"
    for name, port in ports:
        assert isinstance(port, str) and port.startswith("127.0.0.1:") and port.count(":") == 2, \
            f"{name}: {port!r} would listen on every interface of the host; write 127.0.0.1:HOST:CONTAINER"
