"""The Kubernetes target's front door: HAProxy pods between the stack's Service and the server pods.

kube-proxy sends a new connection to any endpoint in its rules, and a server pod whose container just crashed
stays in them for about a second: those connections are refused, and without a proxy the client sees the failure.
The proxy pods send every request on to the server pods' own Service (`modelship-server-backend`, by its virtual
IP: no DNS, whose caches would lag behind the endpoints), so kube-proxy still decides which ready pod serves it,
during a rollout too; and a request that was refused or lost its server is sent again a second later, when
kube-proxy has dropped the dead pod (infra/proxy.py `service_proxy_config`). It runs the local HAProxy image,
pushed to the stack's registry as Prometheus is.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_kubernetes as k8s

from infra.image import pushed_image
from infra.proxy import CONFIG_PATH, METRICS_PORT, PROXY_PORT, service_proxy_config
from infra.registry import Registry
from infra.rollout import REVISION_HISTORY_LIMIT, ROLLOUT_COMPLETE, keep_serving_while_leaving, rolling_update, spread

PROXY_APP = "modelship-proxy"
# The server pods behind one virtual IP: what the proxy sends requests to.
BACKEND_SERVICE = "modelship-server-backend"
# The headless Service naming every proxy pod, for Prometheus to scrape each one's exporter.
PROXY_PODS_SERVICE = f"{PROXY_APP}-pods"
# The Debian package's haproxy user and group in modelship/haproxy (toolchain/images/haproxy): numeric, so that
# the kubelet can check runAsNonRoot.
HAPROXY_UID, HAPROXY_GID = 100, 101
# What each proxy pod asks for (infra/capacity.py counts them): HAProxy passes hundreds of requests per second on a
# few percent of a core, and a drain puts both proxy pods on the remaining node beside the servers.
CPU_REQUEST, CPU_LIMIT, MEMORY = "50m", "500m", "128Mi"


@dataclass(frozen=True)
class KubernetesProxyArgs:
    namespace: pulumi.Input[str]
    image: str
    registry: Registry
    pull_secrets: Optional[list[k8s.core.v1.LocalObjectReferenceArgs]]
    # The server pods' labels and port.
    backend_selector: dict[str, str]
    backend_port: int
    replicas: int
    labels: dict[str, str]


class KubernetesProxy(pulumi.ComponentResource):
    """`selector`: the proxy pods' labels, what the stack's Service selects."""

    selector: dict[str, str]

    def __init__(self, name: str, args: KubernetesProxyArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("modelship:infra:KubernetesProxy", name, None, opts)
        child = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(parent=self))
        labels = {**args.labels, "app.kubernetes.io/name": PROXY_APP}
        self.selector = {k: labels[k] for k in ("app.kubernetes.io/name", "app.kubernetes.io/instance")}
        image = pushed_image(f"{name}-image", args.image, args.registry, opts=pulumi.ResourceOptions(parent=self))
        backend = k8s.core.v1.Service(
            f"{name}-backend",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=BACKEND_SERVICE, namespace=args.namespace,
                                                labels={**labels, "app.kubernetes.io/name": BACKEND_SERVICE}),
            spec=k8s.core.v1.ServiceSpecArgs(
                selector=args.backend_selector,
                ports=[k8s.core.v1.ServicePortArgs(name="http", port=args.backend_port, target_port="http")],
            ),
            opts=child,
        )
        # Named by the engine: a changed configuration (a new virtual IP) is a new ConfigMap, so a new pod
        # template, so a rollout.
        config = k8s.core.v1.ConfigMap(
            f"{name}-config",
            metadata=k8s.meta.v1.ObjectMetaArgs(namespace=args.namespace, labels=labels),
            data={"haproxy.cfg": backend.spec.cluster_ip.apply(lambda ip: service_proxy_config(ip, args.backend_port))},
            opts=child,
        )
        meta = k8s.meta.v1.ObjectMetaArgs(name=PROXY_APP, namespace=args.namespace, labels=labels)
        k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=PROXY_APP, namespace=args.namespace, labels=labels,
                                                annotations=ROLLOUT_COMPLETE),
            spec=k8s.apps.v1.DeploymentSpecArgs(
                replicas=args.replicas,
                revision_history_limit=REVISION_HISTORY_LIMIT,
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=self.selector),
                strategy=rolling_update(),
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(labels=labels),
                    spec=k8s.core.v1.PodSpecArgs(
                        containers=[self._container(image)],
                        image_pull_secrets=args.pull_secrets,
                        topology_spread_constraints=[spread(self.selector)],
                        security_context=k8s.core.v1.PodSecurityContextArgs(
                            run_as_non_root=True, run_as_user=HAPROXY_UID, run_as_group=HAPROXY_GID,
                            seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault"),
                        ),
                        automount_service_account_token=False,
                        volumes=[k8s.core.v1.VolumeArgs(
                            name="config", config_map=k8s.core.v1.ConfigMapVolumeSourceArgs(name=config.metadata.name))],
                    ),
                ),
            ),
            opts=child,
        )
        k8s.core.v1.Service(
            f"{name}-pods",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=PROXY_PODS_SERVICE, namespace=args.namespace,
                                                labels={**labels, "app.kubernetes.io/name": PROXY_PODS_SERVICE}),
            spec=k8s.core.v1.ServiceSpecArgs(
                cluster_ip="None",
                selector=self.selector,
                ports=[k8s.core.v1.ServicePortArgs(name="metrics", port=METRICS_PORT, target_port="metrics")],
            ),
            opts=child,
        )
        if args.replicas > 1:
            k8s.policy.v1.PodDisruptionBudget(
                f"{name}-pdb",
                metadata=meta,
                spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(
                    min_available=1, selector=k8s.meta.v1.LabelSelectorArgs(match_labels=self.selector)),
                opts=child,
            )
        self.register_outputs({})

    @staticmethod
    def _container(image: pulumi.Input[str]) -> k8s.core.v1.ContainerArgs:
        return k8s.core.v1.ContainerArgs(
            name="haproxy",
            image=image,
            ports=[k8s.core.v1.ContainerPortArgs(name="http", container_port=PROXY_PORT),
                   k8s.core.v1.ContainerPortArgs(name="metrics", container_port=METRICS_PORT)],
            resources=k8s.core.v1.ResourceRequirementsArgs(
                requests={"cpu": CPU_REQUEST, "memory": MEMORY}, limits={"cpu": CPU_LIMIT, "memory": MEMORY}),
            readiness_probe=k8s.core.v1.ProbeArgs(
                tcp_socket=k8s.core.v1.TCPSocketActionArgs(port="http"), period_seconds=2, failure_threshold=2),
            liveness_probe=k8s.core.v1.ProbeArgs(
                tcp_socket=k8s.core.v1.TCPSocketActionArgs(port="http"), period_seconds=10, failure_threshold=3),
            volume_mounts=[k8s.core.v1.VolumeMountArgs(name="config", mount_path=CONFIG_PATH.rsplit("/", 1)[0], read_only=True)],
            security_context=k8s.core.v1.SecurityContextArgs(
                read_only_root_filesystem=True,
                allow_privilege_escalation=False,
                capabilities=k8s.core.v1.CapabilitiesArgs(drop=["ALL"]),
            ),
            # The image's stop signal (SIGUSR1) lets HAProxy finish its connections; before it, the pod keeps
            # serving until every kube-proxy has dropped it.
            lifecycle=keep_serving_while_leaving(),
        )
