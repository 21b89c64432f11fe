"""deploy/k8s: every manifest validates against the Kubernetes OpenAPI schemas (kubernetes-validate,
strict: unknown fields fail), and the pieces fit together (selectors, ports, names, settings).

kubernetes-validate has no schema for CRDs: the PodMonitor (monitoring.coreos.com/v1) is checked
by hand below; every other resource is validated, and the test fails if anything else is skipped.
"""
from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from app.settings import Settings, env_variable
from tests.paths import ROOT

K8S = ROOT / "deploy" / "k8s"
# The oldest Kubernetes minor still commonly run, and the newest the package knows.
VERSIONS = ("1.29.0", kubernetes_validate.latest_version())
CRD_KINDS = {("monitoring.coreos.com/v1", "PodMonitor")}
LABELS = {"app.kubernetes.io/name": "lensbridge", "app.kubernetes.io/component": "worker"}


def _docs() -> list[tuple[Path, dict]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        docs += [(path, doc) for doc in yaml.safe_load_all(path.read_text()) if doc]
    return docs


def _resources() -> dict[str, dict]:
    """kind -> the manifest (one of each kind here)."""
    found = {}
    for _path, doc in _docs():
        if doc.get("kind") == "Kustomization":
            continue
        assert doc["kind"] not in found, f"two {doc['kind']} manifests"
        found[doc["kind"]] = doc
    return found


@pytest.fixture(scope="module")
def res() -> dict[str, dict]:
    return _resources()


@pytest.mark.parametrize("version", VERSIONS)
def test_manifests_validate_against_the_kubernetes_schemas(version):
    validated, skipped = [], []
    for path, doc in _docs():
        if doc.get("kind") == "Kustomization":
            continue  # a kustomize build file, not a resource: checked below
        try:
            kubernetes_validate.validate(doc, version, strict=True)
            validated.append(doc["kind"])
        except kubernetes_validate.SchemaNotFoundError:
            skipped.append((doc["apiVersion"], doc["kind"]))
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{path.name} ({doc['kind']}) is invalid for Kubernetes {version}: {exc}", pytrace=False)
    assert set(skipped) == CRD_KINDS, f"only CRDs may lack a schema; skipped {skipped}"
    assert {"Deployment", "ConfigMap", "Service", "PodDisruptionBudget", "Secret", "NetworkPolicy"} <= set(validated)


def test_the_validator_really_rejects_a_broken_deployment(res):
    broken = copy.deepcopy(res["Deployment"])
    broken["spec"]["replicas"] = "two"
    broken["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["prot"] = 9108
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, VERSIONS[-1], strict=True)


def test_kustomization_lists_existing_files_and_no_secret():
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    for name in kustomization["resources"]:
        assert (K8S / name).is_file(), name
    kinds = {yaml.safe_load((K8S / name).read_text())["kind"] for name in kustomization["resources"]}
    assert "Secret" not in kinds  # credentials are created out of band (secret.example.yaml)
    assert {"Deployment", "ConfigMap", "Service", "PodMonitor", "PodDisruptionBudget", "NetworkPolicy"} <= kinds


def _pod(res) -> dict:
    return res["Deployment"]["spec"]["template"]


def _container(res) -> dict:
    [container] = _pod(res)["spec"]["containers"]
    return container


def test_selectors_match_the_pods(res):
    pod_labels = _pod(res)["metadata"]["labels"]
    assert res["Deployment"]["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert res["Service"]["spec"]["selector"].items() <= pod_labels.items()
    assert res["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert res["PodMonitor"]["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert pod_labels.items() >= LABELS.items()


def test_podmonitor_scrapes_the_metrics_port_as_job_lensbridge(res):
    monitor = res["PodMonitor"]
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    [endpoint] = monitor["spec"]["podMetricsEndpoints"]
    ports = {p["name"]: p["containerPort"] for p in _container(res)["ports"]}
    assert endpoint["port"] in ports and endpoint["path"] == "/metrics"
    # the alerting rules select job="lensbridge": jobLabel names the pod label that becomes `job`
    assert _pod(res)["metadata"]["labels"][monitor["spec"]["jobLabel"]] == "lensbridge"
    assert set(monitor["spec"]) <= {"jobLabel", "selector", "podMetricsEndpoints", "namespaceSelector",
                                    "podTargetLabels", "sampleLimit"}
    assert set(endpoint) <= {"port", "path", "interval", "scrapeTimeout", "relabelings", "metricRelabelings",
                             "honorLabels", "scheme"}


def test_probes_and_service_use_the_metrics_port(res):
    container = _container(res)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    config = res["ConfigMap"]["data"]
    assert ports["metrics"] == int(config["LENSBRIDGE_METRICS_PORT"])
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}


def test_liveness_outlasts_the_outage_the_worker_rides_out(res):
    """A broker outage stalls every worker; the probe must not restart them before the worker's
    own budget (LENSBRIDGE_BROKER_OUTAGE_SECONDS, then it exits) plus the stall threshold."""
    from app.settings import Settings

    probe = _container(res)["livenessProbe"]
    config = Settings.from_env(res["ConfigMap"]["data"])
    assert probe["periodSeconds"] * probe["failureThreshold"] > config.broker_outage_s + config.stall_s
    assert res["Service"]["spec"]["ports"][0]["targetPort"] == "metrics"


def test_configmap_holds_valid_worker_settings(res):
    config = res["ConfigMap"]["data"]
    known = {env_variable(f.name) for f in dataclasses.fields(Settings)}
    assert set(config) <= known, f"unknown settings: {set(config) - known}"
    settings = Settings.from_env(config)  # raises SettingsError with the variable's name
    assert settings.bootstrap_servers and settings.standby_replicas >= 1
    assert _container(res)["envFrom"] == [{"configMapRef": {"name": res["ConfigMap"]["metadata"]["name"]}}]
    replicas = res["Deployment"]["spec"]["replicas"]
    assert 2 <= replicas <= settings.partitions, "replicas beyond LENSBRIDGE_PARTITIONS get no partitions"


def test_credentials_come_from_secrets_not_the_configmap(res):
    config = res["ConfigMap"]["data"]
    assert not {"KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD"} & set(config)
    env = {e["name"]: e for e in _container(res)["env"]}
    secret_name = res["Secret"]["metadata"]["name"]
    for name, key in (("KAFKA_SASL_USERNAME", "username"), ("KAFKA_SASL_PASSWORD", "password")):
        ref = env[name]["valueFrom"]["secretKeyRef"]
        assert ref["name"] == secret_name and ref["key"] == key and ref["optional"] is True
        assert key in res["Secret"]["stringData"]
    volumes = {v["name"]: v for v in _pod(res)["spec"]["volumes"]}
    mounts = {m["name"]: m["mountPath"] for m in _container(res)["volumeMounts"]}
    assert volumes["kafka-ca"]["secret"]["optional"] is True
    # the path the ConfigMap comment tells users to set for KAFKA_SSL_CAFILE is where the CA lands
    cafile_hint = next(line for line in (K8S / "configmap.yaml").read_text().splitlines() if "KAFKA_SSL_CAFILE:" in line)
    assert mounts["kafka-ca"] in cafile_hint


def test_pod_runs_as_non_root_with_a_read_only_root(res):
    pod_security = _pod(res)["spec"]["securityContext"]
    assert pod_security["runAsNonRoot"] is True and pod_security["runAsUser"] > 0
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert f"ARG UID={pod_security['runAsUser']}" in dockerfile, "same UID as the image's USER"
    security = _container(res)["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"]["drop"] == ["ALL"]
    # a read-only root needs writable mounts for the data dir and /tmp
    mounts = {m["mountPath"] for m in _container(res)["volumeMounts"] if not m.get("readOnly")}
    assert {res["ConfigMap"]["data"]["LENSBRIDGE_DATA_DIR"], "/tmp"} <= mounts


def test_resources_and_disruption_budget(res):
    resources = _container(res)["resources"]
    assert {"cpu", "memory"} <= set(resources["requests"]) and "memory" in resources["limits"]
    pdb = res["PodDisruptionBudget"]["spec"]
    assert pdb.get("maxUnavailable") == 1 or pdb.get("minAvailable", 0) >= 1
    strategy = res["Deployment"]["spec"]["strategy"]["rollingUpdate"]
    assert strategy["maxUnavailable"] == 0


def test_network_policy_admits_only_the_scrape_port(res):
    policy = res["NetworkPolicy"]["spec"]
    assert policy["podSelector"]["matchLabels"].items() <= _pod(res)["metadata"]["labels"].items()
    assert policy["policyTypes"] == ["Ingress"]  # egress (to Kafka) is the cluster's business
    [rule] = policy["ingress"]
    [port] = rule["ports"]
    assert port == {"port": "metrics", "protocol": "TCP"}
    [monitor] = res["PodMonitor"]["spec"]["podMetricsEndpoints"]
    assert monitor["port"] == port["port"], "Prometheus scrapes the port the policy admits"
    # and that is the only port the pod has: Faust's web server is off
    assert [p["name"] for p in _container(res)["ports"]] == ["metrics"]
    settings = Settings.from_env(res["ConfigMap"]["data"])
    assert settings.web_enabled is False and settings.replication_factor == -1
