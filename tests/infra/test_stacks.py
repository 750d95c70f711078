"""Each stack's program under Pulumi's mocks: what it registers, under which parent, depending on what.

The model side is real: the dev stack trains a small model into a test store once (then reuses it, as a
no-op preview does), and the gate is model/'s own.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from infra.config import StackConfigError
from infra.gate import GateFailed
from tests.infra.harness import CONTAINER, DIGEST, IMAGE, IMAGE_ID, NETWORK, ROOT, Run, quick_dev_config, run_program, stack_file
from tests.infra.registry import free_port, local_registry, push_labelled

import checks  # policy/checks.py: the pack's checks as plain functions

BUILT = "docker-build:index:Image"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
SERVICE = "kubernetes:core/v1:Service"
MONITORING = "modelship:infra:Monitoring::monitoring"
PROXY = "modelship:infra:KubernetesProxy::server-proxy"
PROMOTED_MODEL_ID = "0123456789ab" + "f" * 52
PROMOTED_METRICS = {"accuracy": 0.97, "f1_macro": 0.97, "loss": 0.1}


def short(urn: str) -> str:
    return urn.rsplit("::", 1)[-1]


@pytest.fixture(scope="session")
def store(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("store")


@pytest.fixture(scope="session")
def dev_config(store) -> dict:
    cfg = quick_dev_config(store)
    cfg["gate"] = {"thresholds": {"accuracy": 0.5}}
    return cfg


@pytest.fixture(scope="session")
def dev_run(dev_config) -> Run:
    return run_program("dev", dev_config)


@pytest.fixture(scope="module")
def promoted(tmp_path_factory) -> Iterator[str]:
    """The promoted image, in a real registry: a promoted stack's preview reads its labels back by digest and
    refuses a model id or figures it does not carry (infra/gate.py `bind_to_image`)."""
    labels = {"ai.modelship.model_id": PROMOTED_MODEL_ID, "ai.modelship.gate.passed": "true",
              **{f"ai.modelship.gate.{k}": f"{v:.4g}" for k, v in PROMOTED_METRICS.items()}}
    with local_registry(free_port()) as server:
        yield push_labelled(server, "modelship/server", labels, tmp_path_factory.mktemp("promoted"))


def promoted_config(stack: str, image: str, **metrics: float) -> dict:
    cfg = stack_file(stack)
    cfg["registry"] = {**cfg["registry"], "server": image.split("/", 1)[0], "password": "s3cret"}
    cfg["promotion"] = {
        **cfg.get("promotion", {}),
        "image": image,
        "modelId": PROMOTED_MODEL_ID,
        "metrics": metrics or PROMOTED_METRICS,
    }
    return cfg


def server_deployment(run: Run) -> dict:
    return next(r for r in run.of_type(DEPLOYMENT) if r.name == "server-deployment").inputs


def check_policies(run: Run, stack: str) -> list[str]:
    problems = []
    for r in run.resources:
        for _, rule in checks.ALWAYS.values():
            problems += rule(r.urn, r.type, r.inputs)
        if stack in checks.PINNED_STACKS:
            problems += checks.digest_pinned(r.urn, r.type, r.inputs)
    return problems


class TestDev:
    def test_registers_the_registry_image_and_container_workload(self, dev_run):
        assert dev_run.types == sorted([
            "modelship:infra:Registry", IMAGE, CONTAINER,
            "modelship:infra:ModelImage", BUILT,
            "modelship:infra:ContainerWorkload", NETWORK, IMAGE, CONTAINER,
            "modelship:infra:ReverseProxy", IMAGE, CONTAINER,
            "modelship:infra:Monitoring", IMAGE, CONTAINER, IMAGE, CONTAINER,
        ])

    def test_docker_resources_run_on_the_default_docker_provider(self, dev_run):
        for r in dev_run.resources:
            if r.type in (CONTAINER, NETWORK, IMAGE):
                assert r.provider == "" or "::pulumi:providers:docker::default" in r.provider, (r.name, r.provider)

    def test_children_are_parented_to_their_component(self, dev_run):
        parent = {(r.type, r.name): r.parent for r in dev_run.resources}
        assert short(dev_run.one("modelship:infra:ModelImage").parent) == "modelship-dev"
        assert dev_run.one(BUILT).parent.endswith("modelship:infra:ModelImage::image")
        for child in ((NETWORK, "server-net"), (IMAGE, "server-image"), (CONTAINER, "server-0")):
            assert parent[child].endswith("modelship:infra:ContainerWorkload::server"), child
        for child in ((IMAGE, "server-proxy-image"), (CONTAINER, "server-proxy")):
            assert parent[child].endswith("modelship:infra:ContainerWorkload$modelship:infra:ReverseProxy::server-proxy"), child
        registry_container = next(r for r in dev_run.of_type(CONTAINER) if r.name == "registry")
        assert registry_container.parent.endswith("modelship:infra:Registry::registry")

    def test_image_waits_for_the_registry_and_the_container_for_image_and_network(self, dev_run):
        # The registry container (and, through it, its local image).
        assert sorted(short(d) for d in dev_run.one(BUILT).dependencies) == ["registry", "registry-image"]
        server = next(r for r in dev_run.of_type(CONTAINER) if r.name == "server-0")
        assert sorted(short(d) for d in server.dependencies) == ["server-image", "server-net"]
        pulled = next(r for r in dev_run.of_type(IMAGE) if r.name == "server-image")
        assert [short(d) for d in pulled.dependencies] == ["image"]
        assert pulled.inputs["name"].endswith("@" + DIGEST) and pulled.inputs["keepLocally"] is True

    def test_image_carries_the_model_id_and_the_gate(self, dev_run):
        image = dev_run.one(BUILT).inputs
        model_id = dev_run.outputs["modelId"]
        assert len(model_id) == 64
        (tag,) = image["tags"]
        assert tag.startswith(f"localhost:5000/modelship/server:{model_id[:12]}-")
        assert image["labels"]["ai.modelship.model_id"] == model_id
        assert image["labels"]["ai.modelship.gate.passed"] == "true"
        assert image["network"] == "none" and image["push"] is True and image["buildOnPreview"] is False
        assert image["exec"] is True and image["builder"] == {"name": "default"}
        context = Path(image["context"]["location"])
        assert (context / "model" / "report.json").is_file() and (context / "Dockerfile").is_file()

    def test_container_is_locked_down_and_health_checked(self, dev_run):
        server = next(r for r in dev_run.of_type(CONTAINER) if r.name == "server-0").inputs
        assert server["user"] == "10001:10001" and server["readOnly"] is True
        assert server["capabilities"] == {"drops": ["ALL"]}
        assert server["securityOpts"] == ["no-new-privileges"]
        assert server["memory"] == server["memorySwap"] == 512 and server["cpus"] == "1.0"
        # `up` returns once the container is healthy (the provider's own wait).
        assert server["healthcheck"]["tests"][0] == "CMD" and server["wait"] is True and server["waitTimeout"] > 0
        # No host port: the proxy owns it, the server is reached over the network.
        assert "ports" not in server
        assert server["restart"] == "unless-stopped"
        assert server["image"] == IMAGE_ID
        assert server["networksAdvanced"] == [{"name": "server-net", "aliases": ["model"]}]
        labels = {pair["label"]: pair["value"] for pair in server["labels"]}
        # What this stack made is findable on the Engine by this label.
        assert labels["ai.modelship.stack"] == "modelship/dev"
        assert labels["ai.modelship.gate.passed"] == "true"

    def test_outputs_tell_where_what_and_how(self, dev_run):
        out = dev_run.outputs
        assert out["endpoint"] == "http://127.0.0.1:8080"
        assert out["imageRef"].endswith("@" + DIGEST)
        assert out["gate"]["passed"] is True and out["gate"]["model_id"] == out["modelId"]
        assert out["curl"].startswith("curl ") and "http://127.0.0.1:8080/v2/models/model/infer" in out["curl"]

    def test_proxy_owns_the_host_port_and_servers_are_replaced_create_before_delete(self, dev_run):
        containers = {r.name: r for r in dev_run.of_type(CONTAINER)}
        proxy = containers["server-proxy"]
        assert proxy.inputs["ports"] == [{"internal": 8080, "external": 8080, "ip": "127.0.0.1"}]
        assert proxy.inputs["networksAdvanced"] == [{"name": "server-net", "aliases": ["proxy"]}]
        (upload,) = proxy.inputs["uploads"]
        assert "server-template model 1-201 model:8080" in upload["content"]
        assert "option httpchk GET /v2/health/ready" in upload["content"]
        # Made after the servers (the endpoint answers when `up` returns); never replaced beside itself.
        assert "server-0" in [short(d) for d in proxy.dependencies]
        assert not any("is fixed" in w for w in dev_run.warnings)

    def test_replicas_are_slots_made_one_after_the_other(self, dev_config):
        run = run_program("dev", {**dev_config, "workload": {"replicas": 3}})
        servers = {r.name: r for r in run.of_type(CONTAINER) if r.name.startswith("server-") and r.name[-1].isdigit()}
        assert sorted(servers) == ["server-0", "server-1", "server-2"]
        assert "server-0" in [short(d) for d in servers["server-1"].dependencies]
        assert "server-1" in [short(d) for d in servers["server-2"].dependencies]
        proxy = next(r for r in run.of_type(CONTAINER) if r.name == "server-proxy")
        assert {"server-0", "server-1", "server-2"} <= {short(d) for d in proxy.dependencies}

    def test_policies_pass(self, dev_run):
        assert check_policies(dev_run, "dev") == []

    def test_monitoring_scrapes_the_server_on_its_network_and_expects_this_model(self, dev_run):
        containers = {r.name: r for r in dev_run.of_type(CONTAINER)}
        prometheus = containers["monitoring-prometheus"]
        assert prometheus.parent.endswith("modelship:infra:Monitoring::monitoring")
        # The network name is the workload network's output: Prometheus waits for it.
        assert "server-net" in [short(d) for d in prometheus.dependencies]
        assert prometheus.inputs["networksAdvanced"][0]["name"] == "server-net"
        uploads = {u["file"]: u["content"] for u in prometheus.inputs["uploads"]}
        config = yaml.safe_load(uploads["/etc/prometheus/prometheus.yml"])
        # Every server container by its alias (one address each), and the proxy's exporter as a job of its own.
        assert config["scrape_configs"][0]["dns_sd_configs"][0]["names"] == ["model"]
        proxy_job = config["scrape_configs"][1]
        assert proxy_job["job_name"] == "modelship-proxy" and proxy_job["static_configs"] == [{"targets": ["proxy:8405"]}]
        assert f'model_id!="{dev_run.outputs["modelId"]}"' in uploads["/etc/prometheus/rules.yml"]
        assert dev_run.outputs["prometheusUrl"] == "http://127.0.0.1:9090"
        assert '"title": "modelship (dev)"' in dev_run.outputs["dashboard"]

    def test_monitoring_off_registers_none(self, dev_config):
        run = run_program("dev", {**dev_config, "monitoring": {"enabled": False}})
        assert not run.of_type("modelship:infra:Monitoring") and "prometheusUrl" not in run.outputs

    def test_failing_gate_registers_nothing_and_shows_the_table(self, dev_config):
        run = Run()
        cfg = {**dev_config, "gate": {"thresholds": {"accuracy": 0.5, "loss": 0.0}}}
        with pytest.raises(GateFailed) as err:
            run_program("dev", cfg, run=run)
        assert run.resources == []
        message = str(err.value)
        assert "nothing was registered" in message and "| loss" in message.replace("|loss", "| loss")


@pytest.mark.parametrize("stack", ["staging", "prod"])
class TestPromotedStacks:
    def test_registers_the_kubernetes_workload_and_builds_nothing(self, stack, promoted):
        run = run_program(stack, promoted_config(stack, promoted), secret=("registry",))
        kinds = {r.type for r in run.resources}
        assert not any(t.startswith("docker:") for t in kinds)
        # No model image is built: the only images are the local monitoring and proxy images copied to the registry.
        copied = run.of_type(BUILT)
        assert sorted(r.name for r in copied) == ["monitoring-alertmanager-image", "monitoring-prometheus-image",
                                                  "server-proxy-image"]
        assert all(r.parent.endswith((MONITORING, PROXY)) for r in copied)
        assert all(r.inputs["dockerfile"]["inline"].startswith("FROM modelship/") for r in copied)
        for kind in ("core/v1:Namespace", "apps/v1:Deployment", "core/v1:Service",
                     "autoscaling/v2:HorizontalPodAutoscaler", "policy/v1:PodDisruptionBudget"):
            assert f"kubernetes:{kind}" in kinds
        for r in run.resources:
            if r.type.startswith("kubernetes:"):
                assert r.parent.endswith(("modelship:infra:KubernetesWorkload::server", MONITORING, PROXY))
                if r.type != "kubernetes:core/v1:Namespace":
                    assert "server-ns" in [short(d) for d in r.dependencies], r.name

    def test_monitoring_watches_the_workloads_pods_in_its_namespace(self, stack, promoted):
        run = run_program(stack, promoted_config(stack, promoted), secret=("registry",))
        namespace = stack_file(stack)["kubernetes"]["namespace"]
        pods = next(r for r in run.of_type("kubernetes:core/v1:Service") if r.name == "server-pods").inputs
        deployment = server_deployment(run)
        assert pods["metadata"]["namespace"] == namespace
        assert pods["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
        prometheus = next(r for r in run.of_type("kubernetes:core/v1:Service") if r.name == "monitoring-prometheus-service")
        if stack_file(stack)["kubernetes"].get("service", {}).get("type") == "NodePort":
            # Reached where the endpoint is (the NodePort the API server allocates: unknown under mocks).
            assert prometheus.inputs["spec"]["type"] == "NodePort"
            assert run.outputs["prometheusUrl"].startswith("http://127.0.0.1:")
        else:
            assert run.outputs["prometheusUrl"] == f"http://prometheus.{namespace}.svc:9090"
        config = next(r for r in run.of_type("kubernetes:core/v1:ConfigMap") if r.name == "monitoring-prometheus-config")
        # Only prod expects traffic (monitoring.traffic.expected in Pulumi.prod.yaml).
        assert ("ModelNoTraffic" in config.inputs["data"]["rules.yml"]) is (stack == "prod")
        # Each reverse proxy pod's exporter, through the proxy's own headless Service.
        (proxy_job,) = [j for j in yaml.safe_load(config.inputs["data"]["prometheus.yml"])["scrape_configs"]
                        if j["job_name"] == "modelship-proxy"]
        assert proxy_job["dns_sd_configs"][0]["names"] == [f"modelship-proxy-pods.{namespace}.svc.cluster.local"]
        proxy_pods = next(r for r in run.of_type(SERVICE) if r.name == "server-proxy-pods").inputs["spec"]
        assert proxy_pods["clusterIP"] == "None" and proxy_pods["ports"][0]["port"] == 8405

    def test_deployment_serves_the_promoted_digest_safely(self, stack, promoted):
        run = run_program(stack, promoted_config(stack, promoted), secret=("registry",))
        spec = server_deployment(run)["spec"]
        (container,) = spec["template"]["spec"]["containers"]
        assert container["image"] == promoted
        assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            assert container[probe]["httpGet"]["port"] == "http"
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert spec["template"]["spec"]["imagePullSecrets"] == [{"name": "modelship-server-pull"}]
        assert spec["template"]["metadata"]["annotations"]["ai.modelship.gate.passed"] == "true"
        # A deployment's version is its image's tag (docs/contracts.md), here the promoted ref's `:test`.
        assert spec["template"]["metadata"]["labels"]["app.kubernetes.io/version"] == "test"
        assert run.outputs["imageRef"] == promoted
        assert check_policies(run, stack) == []

    def test_the_service_sends_requests_through_the_reverse_proxy_to_the_server_pods(self, stack, promoted):
        run = run_program(stack, promoted_config(stack, promoted), secret=("registry",))
        namespace = stack_file(stack)["kubernetes"]["namespace"]
        services = {r.name: r for r in run.of_type(SERVICE)}
        proxy = next(r for r in run.of_type(DEPLOYMENT) if r.name == "server-proxy-deployment")
        proxy_pods = proxy.inputs["spec"]["selector"]["matchLabels"]
        assert services["server-service"].inputs["spec"]["selector"] == proxy_pods
        # The Service moves to the proxy pods only once they run; the proxy starts once the first servers serve.
        assert "server-proxy-deployment" in [short(d) for d in services["server-service"].dependencies]
        assert "server-deployment" in [short(d) for d in proxy.dependencies]
        # The proxy sends every request to the server pods' own Service, by its virtual IP, and retries.
        backend = services["server-proxy-backend"].inputs
        assert backend["metadata"]["namespace"] == namespace and backend["spec"].get("clusterIP") != "None"
        assert backend["spec"]["selector"] == server_deployment(run)["spec"]["selector"]["matchLabels"]
        (config,) = [r for r in run.of_type("kubernetes:core/v1:ConfigMap") if r.name == "server-proxy-config"]
        haproxy = config.inputs["data"]["haproxy.cfg"]
        assert re.search(r"^    server service \S+:8080$", haproxy, re.M) and "retry-on conn-failure" in haproxy, haproxy
        (pdb,) = [r for r in run.of_type("kubernetes:policy/v1:PodDisruptionBudget") if r.name == "server-proxy-pdb"]
        assert pdb.inputs["spec"]["selector"]["matchLabels"] == proxy_pods
        # The headless Service the proxy resolves names the server pods.
        assert services["server-pods"].inputs["spec"]["selector"] == server_deployment(run)["spec"]["selector"]["matchLabels"]

    def test_without_the_proxy_the_service_selects_the_server_pods(self, stack, promoted):
        cfg = promoted_config(stack, promoted)
        cfg["kubernetes"] = {**cfg["kubernetes"], "proxy": {"enabled": False}}
        run = run_program(stack, cfg, secret=("registry",))
        assert not [r for r in run.resources if PROXY in r.parent or r.name.startswith("server-proxy")]
        service = next(r for r in run.of_type(SERVICE) if r.name == "server-service")
        assert service.inputs["spec"]["selector"] == server_deployment(run)["spec"]["selector"]["matchLabels"]

    def test_metrics_below_this_stacks_thresholds_register_nothing(self, stack, promoted):
        run = Run()
        with pytest.raises(GateFailed, match="fails this stack's gate"):
            run_program(stack, promoted_config(stack, promoted, accuracy=0.91, f1_macro=0.91, loss=0.1),
                        secret=("registry",), run=run)
        assert run.resources == []


def test_prod_refuses_a_tag_that_is_not_digest_pinned():
    run = Run()
    cfg = promoted_config("prod", "localhost:5001/modelship/server:0123456789ab-ba9876543210@sha256:" + "1" * 64)
    cfg["promotion"]["image"] = "localhost:5001/modelship/server:0123456789ab-ba9876543210"
    with pytest.raises(StackConfigError, match="must be pinned by digest"):
        run_program("prod", cfg, secret=("registry",), run=run)
    assert run.resources == []


def test_policy_rejects_an_unhardened_deployment_and_a_latest_tag():
    deployment = {"spec": {"template": {"metadata": {"annotations": {}}, "spec": {"containers": [
        {"name": "server", "image": "localhost:5001/modelship/server:latest"}]}}}}
    urn = f"urn:pulumi:prod::modelship::modelship:infra:KubernetesWorkload${DEPLOYMENT}::server-deployment"
    problems = [p for _, rule in checks.ALWAYS.values() for p in rule(urn, DEPLOYMENT, deployment)]
    problems += checks.digest_pinned(urn, DEPLOYMENT, deployment)
    text = "\n".join(problems)
    for expected in ("not 'true'", "latest", "no readinessProbe", "no livenessProbe", "no cpu limit",
                     "no memory limit", "may run as root", "not pinned by digest"):
        assert expected in text, text
