"""The `Monitoring` component: deploys what `monitoring.render` generates, on either target.

- docker: a Prometheus and an Alertmanager container on the workload's network, their configs copied
  into the containers before they start (a changed rule replaces the container, so what runs is what was
  previewed).
- kubernetes: a Prometheus and an Alertmanager Deployment fed by ConfigMaps, scraping every server pod
  through the workload's headless Service; or, when the cluster runs the Prometheus Operator, a `ServiceMonitor`
  and a `PrometheusRule` for the cluster's own Prometheus instead.
Both publish the Grafana dashboard as the `dashboard` output (and, on Kubernetes, as a ConfigMap that
Grafana's dashboard sidecar picks up).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional

import pulumi
import pulumi_docker as docker
import pulumi_kubernetes as k8s

from infra import docker_engine
from infra.config import StackConfig
from infra.container import MODEL_ALIAS, memory_bytes
from infra.image import pushed_image
from infra.kubernetes import APP, PODS_SERVICE
from infra.kubernetes_proxy import PROXY_PODS_SERVICE
from infra.proxy import METRICS_PORT as PROXY_METRICS_PORT, PROXY_ALIAS
from infra.registry import Registry
from infra.rollout import REVISION_HISTORY_LIMIT, ROLLOUT_COMPLETE
from model.report import Task
from monitoring import Drift, DnsTargets, MonitoringSpec, Slo, StaticTargets, Traffic, render
from monitoring.bundle import ALERTMANAGER_FILE, PROMETHEUS_FILE
from monitoring.prometheus import RULES_FILE
from monitoring.rules import rule_file
from monitoring.spec import Alerting, Targets

PROMETHEUS_PORT = 9090
ALERTMANAGER_PORT = 9093
NOBODY = 65534  # the monitoring images run as nobody
# What each of the Prometheus and Alertmanager pods asks for (infra/capacity.py counts them).
POD_CPU_REQUEST, POD_CPU_LIMIT, POD_MEMORY = "100m", "1", "512Mi"


def container_targets(port: int) -> DnsTargets:
    """Every server container: each answers to the alias on the stack's network (Docker's DNS, one address each),
    so each replica is scraped on its own, as pods are on Kubernetes."""
    return DnsTargets(names=[MODEL_ALIAS], port=port, refresh_interval="5s")


def proxy_targets() -> StaticTargets:
    return StaticTargets(addresses=[f"{PROXY_ALIAS}:{PROXY_METRICS_PORT}"])


def pod_targets(namespace: str, port: int) -> DnsTargets:
    return DnsTargets(names=[f"{PODS_SERVICE}.{namespace}.svc.cluster.local"], port=port)


def proxy_pod_targets(namespace: str) -> DnsTargets:
    """Each reverse proxy pod on its own (their counters are per pod)."""
    return DnsTargets(names=[f"{PROXY_PODS_SERVICE}.{namespace}.svc.cluster.local"], port=PROXY_METRICS_PORT)


@dataclass(frozen=True)
class MonitoringArgs:
    target: Literal["docker", "kubernetes"]
    # Scrape targets, expected model id, SLO and thresholds: everything the generated files say.
    spec: MonitoringSpec
    prometheus_image: str = "modelship/prometheus:2"
    alertmanager_image: str = "modelship/alertmanager:0"
    # docker: the workload's network, and host ports on 127.0.0.1 (None: Docker picks a free one).
    network_name: Optional[pulumi.Input[str]] = None
    prometheus_port: Optional[int] = PROMETHEUS_PORT
    alertmanager_port: Optional[int] = None
    # kubernetes: where the workload runs (its headless Service PODS_SERVICE names the server pods).
    namespace: Optional[pulumi.Input[str]] = None
    provider: Optional[k8s.Provider] = None
    # kubernetes: the registry the nodes pull from; the local monitoring images are pushed there and run by
    # digest, with the workload's pull secrets.
    registry: Optional[Registry] = None
    pull_secrets: Optional[list[k8s.core.v1.LocalObjectReferenceArgs]] = None
    # kubernetes: where the nodes' NodePorts answer when the workload is a NodePort Service (the Prometheus and
    # Alertmanager Services are then NodePorts too, reachable where the endpoint is); None: in-cluster only.
    node_port_host: Optional[str] = None
    # kubernetes: the cluster has the Prometheus Operator's CRDs; its Prometheus selects our objects by these labels.
    operator: bool = False
    operator_labels: dict[str, str] = field(default_factory=dict)
    memory: str = POD_MEMORY

    def __post_init__(self) -> None:
        if self.target == "docker" and self.network_name is None:
            raise ValueError("MonitoringArgs: the docker target needs network_name (the workload's network)")
        if self.target == "kubernetes" and self.namespace is None:
            raise ValueError("MonitoringArgs: the kubernetes target needs the workload's namespace")
        if self.target == "kubernetes" and not self.operator and self.registry is None:
            raise ValueError("MonitoringArgs: the kubernetes target's own Prometheus needs the registry its nodes pull from")


def monitoring_args(
    cfg: StackConfig,
    stack: str,
    model_id: str,
    *,
    task: Task,
    network_name: Optional[pulumi.Input[str]] = None,
    namespace: Optional[pulumi.Input[str]] = None,
    provider: Optional[k8s.Provider] = None,
    registry: Optional[Registry] = None,
    pull_secrets: Optional[list[k8s.core.v1.LocalObjectReferenceArgs]] = None,
) -> MonitoringArgs:
    """The stack config's monitoring section as `MonitoringArgs`, for a model of `task` (report.json `task`:
    which prediction series its server exposes, so which drift rules and panels apply)."""
    mon, port, service = cfg.monitoring, cfg.workload.port, cfg.kubernetes.service
    node_port_host = service.host if cfg.target == "kubernetes" and service.type == "NodePort" else None
    if cfg.target == "docker":
        targets = container_targets(port)
        proxy: Optional[Targets] = proxy_targets()
        alertmanagers = [f"alertmanager:{ALERTMANAGER_PORT}"]
    else:
        targets = pod_targets(cfg.kubernetes.namespace, port)
        proxy = proxy_pod_targets(cfg.kubernetes.namespace) if cfg.kubernetes.proxy.enabled else None
        alertmanagers = [f"alertmanager.{cfg.kubernetes.namespace}.svc:{ALERTMANAGER_PORT}"]
    spec = MonitoringSpec(
        environment=stack,
        expected_model_id=model_id,
        task=task,
        targets=targets,
        proxy_targets=proxy,
        slo=Slo(availability=mon.slo.availability, latency_p99_seconds=mon.slo.latency_p99_seconds),
        drift=Drift(
            window=mon.drift.window,
            prediction_psi=mon.drift.prediction_psi,
            input_psi=mon.drift.input_psi,
            min_rows=mon.drift.min_rows,
        ),
        traffic=Traffic(expected=mon.traffic.expected, min_rps=mon.traffic.min_rps),
        alerting=Alerting(alertmanagers=alertmanagers, webhook_url=mon.alerting.webhook_url),
    )
    return MonitoringArgs(
        target=cfg.target,
        spec=spec,
        prometheus_image=mon.images.prometheus,
        alertmanager_image=mon.images.alertmanager,
        network_name=network_name,
        prometheus_port=mon.prometheus_port,
        alertmanager_port=mon.alertmanager_port,
        namespace=namespace,
        provider=provider,
        registry=registry,
        pull_secrets=pull_secrets,
        node_port_host=node_port_host,
        operator=mon.operator,
        operator_labels=dict(mon.operator_labels),
    )


class Monitoring(pulumi.ComponentResource):
    """`prometheus_url`: where Prometheus answers (None under the Operator: the cluster's own);
    `dashboard`: the Grafana dashboard JSON."""

    prometheus_url: pulumi.Output[Optional[str]]
    dashboard: pulumi.Output[str]

    def __init__(self, name: str, args: MonitoringArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("modelship:infra:Monitoring", name, None, opts)
        self.bundle = render(args.spec, prometheus_address=f"localhost:{PROMETHEUS_PORT}")
        if args.target == "docker":
            url = self._docker(name, args)
        elif args.operator:
            url = self._operator(name, args)
        else:
            url = self._kubernetes(name, args)
        self.prometheus_url = pulumi.Output.from_input(url)
        self.dashboard = pulumi.Output.from_input(self.bundle.dashboard)
        self.register_outputs({"prometheus_url": self.prometheus_url, "dashboard": self.dashboard})

    # --- docker ----------------------------------------------------------------------------------

    def _docker(self, name: str, args: MonitoringArgs) -> pulumi.Output[str]:
        files = self.bundle.files()
        prometheus = self._docker_container(
            f"{name}-prometheus", args, args.prometheus_image, "prometheus", PROMETHEUS_PORT, args.prometheus_port,
            {f"/etc/prometheus/{PROMETHEUS_FILE}": files[PROMETHEUS_FILE], f"/etc/prometheus/{RULES_FILE}": files[RULES_FILE]},
            # Healthy once it evaluates queries (its config and rules loaded).
            ["CMD", "promtool", "query", "instant", f"http://127.0.0.1:{PROMETHEUS_PORT}", "vector(1)"],
        )
        self.alertmanager = self._docker_container(
            f"{name}-alertmanager", args, args.alertmanager_image, "alertmanager", ALERTMANAGER_PORT, args.alertmanager_port,
            {f"/etc/alertmanager/{ALERTMANAGER_FILE}": files[ALERTMANAGER_FILE]},
            ["CMD", "amtool", "config", "show", f"--alertmanager.url=http://127.0.0.1:{ALERTMANAGER_PORT}"],
        )
        self.prometheus = prometheus
        host_port = prometheus.ports.apply(lambda ports: str(ports[0].external))
        return pulumi.Output.concat("http://127.0.0.1:", host_port)

    def _docker_container(
        self, name: str, args: MonitoringArgs, image: str, alias: str, port: int, host_port: Optional[int],
        files: dict[str, str], health_test: list[str],
    ) -> docker.Container:
        child = pulumi.ResourceOptions(parent=self)
        # The images are local (`make bootstrap`): never pulled nor removed. The files are copied in before the
        # container starts. A fixed host port (and the fixed name's provider default) stops the old container
        # before its replacement starts.
        local = docker_engine.local_image(f"{name}-image", image, opts=child)
        return docker_engine.container(
            name,
            image=local.image_id,
            health=docker_engine.healthcheck(health_test),
            uploads=[docker.ContainerUploadArgs(file=path, content=text) for path, text in sorted(files.items())],
            ports=[docker.ContainerPortArgs(internal=port, external=host_port, ip="127.0.0.1")],
            networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=args.network_name, aliases=[alias])],
            # No swap on top of the limit (see container_args).
            memory=memory_bytes(args.memory) // 2**20,
            memory_swap=memory_bytes(args.memory) // 2**20,
            capabilities=docker.ContainerCapabilitiesArgs(drops=["ALL"]),
            security_opts=["no-new-privileges"],
            opts=child,
        )

    # --- kubernetes ------------------------------------------------------------------------------

    def _child(self, args: MonitoringArgs) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, provider=args.provider)

    def _labels(self, component: str) -> dict[str, str]:
        return {"app.kubernetes.io/name": component, "app.kubernetes.io/part-of": "modelship",
                "app.kubernetes.io/managed-by": "pulumi"}

    def _dashboard_config_map(self, name: str, args: MonitoringArgs) -> None:
        k8s.core.v1.ConfigMap(
            f"{name}-dashboard",
            # `grafana_dashboard`: the label Grafana's dashboard sidecar watches for.
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name="modelship-dashboard", namespace=args.namespace,
                labels={**self._labels("modelship-dashboard"), "grafana_dashboard": "1"},
            ),
            data={"modelship.json": self.bundle.dashboard},
            opts=self._child(args),
        )

    def _kubernetes(self, name: str, args: MonitoringArgs) -> pulumi.Output[str]:
        child = self._child(args)
        files = self.bundle.files()
        prometheus = self._kubernetes_server(
            f"{name}-prometheus", args, "prometheus", args.prometheus_image, PROMETHEUS_PORT, "/etc/prometheus",
            {PROMETHEUS_FILE: files[PROMETHEUS_FILE], RULES_FILE: files[RULES_FILE]},
            [f"--config.file=/etc/prometheus/{PROMETHEUS_FILE}", "--storage.tsdb.path=/prometheus"], "/prometheus",
        )
        self._kubernetes_server(
            f"{name}-alertmanager", args, "alertmanager", args.alertmanager_image, ALERTMANAGER_PORT, "/etc/alertmanager",
            {ALERTMANAGER_FILE: files[ALERTMANAGER_FILE]},
            [f"--config.file=/etc/alertmanager/{ALERTMANAGER_FILE}", "--storage.path=/alertmanager"], "/alertmanager",
        )
        self._dashboard_config_map(name, args)
        if args.node_port_host is not None:
            return prometheus.spec.apply(lambda spec: f"http://{args.node_port_host}:{spec.ports[0].node_port}")
        return pulumi.Output.concat("http://", prometheus.metadata.name, ".", args.namespace, f".svc:{PROMETHEUS_PORT}")

    def _kubernetes_server(
        self, name: str, args: MonitoringArgs, app: str, image: str, port: int, config_dir: str,
        files: dict[str, str], container_args: list[str], data_dir: str,
    ) -> k8s.core.v1.Service:
        child = self._child(args)
        labels = self._labels(app)
        # The local image in the registry the nodes pull from (nothing is pulled from elsewhere).
        pushed = pushed_image(f"{name}-image", image, args.registry, opts=pulumi.ResourceOptions(parent=self))
        config = k8s.core.v1.ConfigMap(
            f"{name}-config", metadata=k8s.meta.v1.ObjectMetaArgs(name=f"{app}-config", namespace=args.namespace, labels=labels),
            data=files, opts=child,
        )
        def probe(path: str) -> k8s.core.v1.ProbeArgs:
            return k8s.core.v1.ProbeArgs(http_get=k8s.core.v1.HTTPGetActionArgs(path=path, port="http"), period_seconds=10)

        k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=app, namespace=args.namespace, labels=labels,
                                                annotations=ROLLOUT_COMPLETE),
            spec=k8s.apps.v1.DeploymentSpecArgs(
                replicas=1,
                revision_history_limit=REVISION_HISTORY_LIMIT,
                # One writer per data directory: the old pod stops before the new one starts.
                strategy=k8s.apps.v1.DeploymentStrategyArgs(type="Recreate"),
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=labels),
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(labels=labels),
                    spec=k8s.core.v1.PodSpecArgs(
                        automount_service_account_token=False,
                        image_pull_secrets=args.pull_secrets,
                        security_context=k8s.core.v1.PodSecurityContextArgs(
                            run_as_non_root=True, run_as_user=NOBODY, run_as_group=NOBODY, fs_group=NOBODY,
                            seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault"),
                        ),
                        containers=[k8s.core.v1.ContainerArgs(
                            name=app,
                            image=pushed,
                            args=container_args,
                            ports=[k8s.core.v1.ContainerPortArgs(name="http", container_port=port)],
                            readiness_probe=probe("/-/ready"),
                            liveness_probe=probe("/-/healthy"),
                            resources=k8s.core.v1.ResourceRequirementsArgs(
                                requests={"cpu": POD_CPU_REQUEST, "memory": args.memory}, limits={"cpu": POD_CPU_LIMIT, "memory": args.memory}
                            ),
                            security_context=k8s.core.v1.SecurityContextArgs(
                                read_only_root_filesystem=True, allow_privilege_escalation=False,
                                capabilities=k8s.core.v1.CapabilitiesArgs(drop=["ALL"]),
                            ),
                            volume_mounts=[
                                k8s.core.v1.VolumeMountArgs(name="config", mount_path=config_dir, read_only=True),
                                k8s.core.v1.VolumeMountArgs(name="data", mount_path=data_dir),
                            ],
                        )],
                        volumes=[
                            k8s.core.v1.VolumeArgs(name="config", config_map=k8s.core.v1.ConfigMapVolumeSourceArgs(name=config.metadata.name)),
                            k8s.core.v1.VolumeArgs(name="data", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs()),
                        ],
                    ),
                ),
            ),
            opts=child,
        )
        return k8s.core.v1.Service(
            f"{name}-service",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=app, namespace=args.namespace, labels=labels),
            spec=k8s.core.v1.ServiceSpecArgs(
                type="NodePort" if args.node_port_host is not None else "ClusterIP",
                selector=labels, ports=[k8s.core.v1.ServicePortArgs(name="http", port=port, target_port="http")]
            ),
            opts=child,
        )

    def _operator(self, name: str, args: MonitoringArgs) -> None:
        """The cluster's Prometheus scrapes and alerts; routing stays with the cluster's Alertmanager."""
        child = self._child(args)
        labels = {**self._labels("modelship-monitoring"), **args.operator_labels}
        spec = args.spec
        k8s.apiextensions.CustomResource(
            f"{name}-servicemonitor",
            api_version="monitoring.coreos.com/v1",
            kind="ServiceMonitor",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=APP, namespace=args.namespace, labels=labels),
            spec={
                # The workload's headless Service: one endpoint per ready server pod.
                "selector": {"matchLabels": {"app.kubernetes.io/name": PODS_SERVICE}},
                "endpoints": [{
                    "port": "http",
                    "path": "/metrics",
                    "interval": spec.timing.scrape_interval,
                    # The rules select job="<spec.job>"; the Operator would name the job after the Service.
                    "relabelings": [{"targetLabel": "job", "replacement": spec.job}],
                }],
            },
            opts=child,
        )
        k8s.apiextensions.CustomResource(
            f"{name}-rules",
            api_version="monitoring.coreos.com/v1",
            kind="PrometheusRule",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="modelship", namespace=args.namespace, labels=labels),
            spec=rule_file(spec),
            opts=child,
        )
        self._dashboard_config_map(name, args)

