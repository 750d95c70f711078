"""The `Monitoring` component under Pulumi's mocks, for both targets (and the Operator flavour):
what it registers, with which key properties, under which parent."""
from __future__ import annotations

import json
from typing import Callable

import pulumi
import pytest
import yaml

from infra.config import RegistryConfig, StackConfig
from infra.monitoring import Monitoring, MonitoringArgs, container_targets, monitoring_args, pod_targets
from monitoring import MonitoringSpec
from infra.registry import Registry, RegistryArgs
from tests.infra.harness import CONTAINER, IMAGE, IMAGE_ID, ROOT, Run, run_function

import checks as policy  # policy/checks.py: the pack's checks as plain functions

MODEL_ID = "ab" * 32
COMPONENT = "modelship:infra:Monitoring"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
SERVICE = "kubernetes:core/v1:Service"
BUILT = "docker-build:index:Image"


def run(declare: Callable[[], Monitoring]) -> tuple[Run, dict]:
    """Declares the component in a fresh mocked stack; returns what was registered and the component's outputs."""

    def program() -> None:
        component = declare()
        pulumi.export("prometheus_url", component.prometheus_url)
        pulumi.export("dashboard", component.dashboard)

    record = run_function(program)
    return record, record.outputs


def spec(targets) -> MonitoringSpec:
    return MonitoringSpec(environment="test", expected_model_id=MODEL_ID, targets=targets)


def children_of(record: Run, name: str) -> list:
    component = next(r for r in record.resources if r.type == COMPONENT and r.name == name)
    return [r for r in record.resources if r.parent == component.urn]


@pytest.fixture(scope="module")
def docker_run():
    args = MonitoringArgs(target="docker", spec=spec(container_targets(8080)), network_name="server-net", prometheus_port=9090)
    return run(lambda: Monitoring("monitoring", args))


class TestDocker:
    def test_prometheus_and_alertmanager_containers_under_the_component(self, docker_run):
        record, _ = docker_run
        assert sorted((r.type, r.name) for r in children_of(record, "monitoring")) == [
            (CONTAINER, "monitoring-alertmanager"), (CONTAINER, "monitoring-prometheus"),
            (IMAGE, "monitoring-alertmanager-image"), (IMAGE, "monitoring-prometheus-image"),
        ]

    def test_containers_carry_the_generated_files_on_the_workload_network(self, docker_run):
        record, _ = docker_run
        containers = {r.name: r.inputs for r in record.of_type(CONTAINER)}
        prometheus, alertmanager = containers["monitoring-prometheus"], containers["monitoring-alertmanager"]
        uploads = {u["file"]: u["content"] for u in prometheus["uploads"]}
        assert set(uploads) == {"/etc/prometheus/prometheus.yml", "/etc/prometheus/rules.yml"}
        config = yaml.safe_load(uploads["/etc/prometheus/prometheus.yml"])
        assert config["scrape_configs"][0]["dns_sd_configs"][0]["names"] == ["model"]
        assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["alertmanager:9093"]
        assert f'model_id!="{MODEL_ID}"' in uploads["/etc/prometheus/rules.yml"]
        assert [u["file"] for u in alertmanager["uploads"]] == ["/etc/alertmanager/alertmanager.yml"]
        for inputs, alias in ((prometheus, "prometheus"), (alertmanager, "alertmanager")):
            assert inputs["networksAdvanced"] == [{"name": "server-net", "aliases": [alias]}]
            assert inputs["capabilities"] == {"drops": ["ALL"]} and inputs["securityOpts"] == ["no-new-privileges"]
            assert all(port["ip"] == "127.0.0.1" for port in inputs["ports"])
            # `up` waits for the container's own health check: Prometheus answers queries, Alertmanager its API.
            assert inputs["healthcheck"]["tests"][0] == "CMD" and inputs["wait"] is True
        assert prometheus["ports"] == [{"internal": 9090, "external": 9090, "ip": "127.0.0.1"}]
        assert alertmanager["ports"] == [{"internal": 9093, "ip": "127.0.0.1"}]

    def test_local_images_are_used_by_id_kept_locally_and_pass_the_tag_policy(self, docker_run):
        record, _ = docker_run
        images = record.of_type(IMAGE)
        assert sorted(i.inputs["name"] for i in images) == ["modelship/alertmanager:0", "modelship/prometheus:2"]
        assert all(i.inputs["keepLocally"] is True for i in images)
        for c in record.of_type(CONTAINER):
            assert c.inputs["image"] == IMAGE_ID
        for r in [*images, *record.of_type(CONTAINER)]:
            assert policy.no_latest(r.urn, r.type, r.inputs) == [] and not policy.serving(r.urn)

    def test_outputs(self, docker_run):
        _, outputs = docker_run
        assert outputs["prometheus_url"] == "http://127.0.0.1:9090"
        assert json.loads(outputs["dashboard"])["title"] == "modelship (test)"


def external_registry() -> Registry:
    """The registry a cluster's nodes pull from: an external one (no container to declare)."""
    return Registry("registry", RegistryArgs(registry=RegistryConfig(
        kind="external", server="registry.test:5000", username="u", password="p")))


def kubernetes_args(**extra) -> MonitoringArgs:
    return MonitoringArgs(
        target="kubernetes", spec=spec(pod_targets("modelship", 8080)), namespace="modelship",
        registry=external_registry(), **extra
    )


@pytest.fixture(scope="module")
def kubernetes_run():
    return run(lambda: Monitoring("monitoring", kubernetes_args()))


class TestKubernetes:
    def test_deployments_config_maps_and_services_under_the_component(self, kubernetes_run):
        record, _ = kubernetes_run
        assert sorted(r.type for r in children_of(record, "monitoring")) == sorted(
            [DEPLOYMENT] * 2 + [CONFIG_MAP] * 3 + [SERVICE] * 2 + [BUILT] * 2
        )
        # The local Prometheus and Alertmanager images, copied to the registry and run by digest from there.
        copied = {r.inputs["dockerfile"]["inline"]: r.inputs["tags"] for r in record.of_type(BUILT)}
        assert copied == {"FROM modelship/prometheus:2\n": ["registry.test:5000/modelship/prometheus:2"],
                          "FROM modelship/alertmanager:0\n": ["registry.test:5000/modelship/alertmanager:0"]}

    def test_each_server_pod_is_a_target_through_the_workloads_headless_service(self, kubernetes_run):
        record, _ = kubernetes_run
        # The workload declares the headless Service (infra/kubernetes.py); monitoring only resolves its name.
        assert "modelship-server-pods" not in {r.inputs["metadata"]["name"] for r in record.of_type(SERVICE)}
        configs = {r.inputs["metadata"]["name"]: r.inputs["data"] for r in record.of_type(CONFIG_MAP)}
        scrape = yaml.safe_load(configs["prometheus-config"]["prometheus.yml"])["scrape_configs"][0]
        assert scrape["dns_sd_configs"][0]["names"] == ["modelship-server-pods.modelship.svc.cluster.local"]
        assert "groups" in yaml.safe_load(configs["prometheus-config"]["rules.yml"])
        assert "route" in yaml.safe_load(configs["alertmanager-config"]["alertmanager.yml"])
        assert json.loads(configs["modelship-dashboard"]["modelship.json"])["panels"]

    def test_deployments_mount_their_config_and_pass_the_hardening_policy(self, kubernetes_run):
        record, _ = kubernetes_run
        for deployment in record.of_type(DEPLOYMENT):
            pod = deployment.inputs["spec"]["template"]["spec"]
            (container,) = pod["containers"]
            assert any(m["readOnly"] for m in container["volumeMounts"]), deployment.name
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
            assert policy.hardened_workload(deployment.urn, DEPLOYMENT, deployment.inputs) == []
            assert policy.no_latest(deployment.urn, DEPLOYMENT, deployment.inputs) == []
            # Third-party images: neither gated nor, built locally, digest-pinned; the serving rules skip them.
            assert not policy.serving(deployment.urn)
            assert policy.gate_labels(deployment.urn, DEPLOYMENT, deployment.inputs) == []
            assert policy.digest_pinned(deployment.urn, DEPLOYMENT, deployment.inputs) == []

    def test_outputs(self, kubernetes_run):
        _, outputs = kubernetes_run
        assert outputs["prometheus_url"] == "http://prometheus.modelship.svc:9090"


@pytest.fixture(scope="module")
def operator_run():
    return run(lambda: Monitoring("monitoring", kubernetes_args(operator=True, operator_labels={"release": "prom"})))


class TestOperator:
    def test_servicemonitor_and_prometheusrule_instead_of_a_prometheus(self, operator_run):
        record, outputs = operator_run
        kinds = sorted(r.inputs["kind"] for r in children_of(record, "monitoring"))
        assert kinds == ["ConfigMap", "PrometheusRule", "ServiceMonitor"]
        assert not record.of_type(DEPLOYMENT)
        assert outputs["prometheus_url"] is None

    def test_the_rules_and_the_job_label_match_the_generated_ones(self, operator_run):
        record, _ = operator_run
        by_kind = {r.inputs.get("kind"): r.inputs for r in record.resources}
        monitor, rule = by_kind["ServiceMonitor"], by_kind["PrometheusRule"]
        assert monitor["metadata"]["labels"]["release"] == "prom" and rule["metadata"]["labels"]["release"] == "prom"
        assert monitor["spec"]["selector"] == {"matchLabels": {"app.kubernetes.io/name": "modelship-server-pods"}}
        assert monitor["spec"]["endpoints"][0]["relabelings"] == [{"targetLabel": "job", "replacement": "modelship"}]
        alerts = {r["alert"] for r in rule["spec"]["groups"][0]["rules"] if "alert" in r}
        assert "ModelInputDrift" in alerts and "ModelInfoMismatch" in alerts


def test_args_from_each_stacks_config():
    def program() -> None:
        registry = external_registry()
        for stack in ("dev", "staging", "prod"):
            raw = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
            cfg = StackConfig.model_validate({k.split(":", 1)[1]: v for k, v in raw.items()})
            args = monitoring_args(cfg, stack, MODEL_ID, task="multiclass", network_name="net",
                                   namespace=cfg.kubernetes.namespace, registry=registry)
            assert args.target == cfg.target and args.spec.slo.availability == cfg.monitoring.slo.availability
            assert args.spec.traffic.expected is (stack == "prod")
            if cfg.target == "kubernetes":
                assert args.spec.targets.names == [f"modelship-server-pods.{cfg.kubernetes.namespace}.svc.cluster.local"]
                # Each reverse proxy pod, on its exporter's port.
                proxies = args.spec.proxy_targets
                assert (proxies.names, proxies.port) == ([f"modelship-proxy-pods.{cfg.kubernetes.namespace}.svc.cluster.local"], 8405)
            else:
                assert (args.spec.targets.names, args.spec.targets.port) == (["model"], 8080)
                assert args.spec.proxy_targets.addresses == ["proxy:8405"]

    run_function(program)


def test_args_carry_every_monitoring_key_of_the_config():
    cfg = StackConfig.model_validate({
        "target": "kubernetes",
        "registry": {"kind": "external"},
        "monitoring": {
            "drift": {"window": "1h", "predictionPsi": 0.1, "inputPsi": 0.25, "minRows": 50},
            "traffic": {"expected": True, "minRps": 0.5},
            "alerting": {"webhookUrl": "http://hooks.internal:9000/alert"},
            "alertmanagerPort": 19093,
            "operator": True,
            "operatorLabels": {"release": "prom"},
        },
    })
    args = monitoring_args(cfg, "staging", MODEL_ID, task="regression", namespace="modelship")
    drift = args.spec.drift
    assert (drift.window, drift.prediction_psi, drift.input_psi, drift.min_rows) == ("1h", 0.1, 0.25, 50)
    assert args.spec.task == "regression"
    assert args.spec.traffic.expected is True and args.spec.traffic.min_rps == 0.5
    assert args.spec.alerting.webhook_url == "http://hooks.internal:9000/alert"
    assert args.alertmanager_port == 19093 and args.operator is True and args.operator_labels == {"release": "prom"}


def test_incomplete_args_are_refused():
    with pytest.raises(ValueError, match="network_name"):
        MonitoringArgs(target="docker", spec=spec(container_targets(8080)))
    with pytest.raises(ValueError, match="namespace"):
        MonitoringArgs(target="kubernetes", spec=spec(pod_targets("m", 8080)))
