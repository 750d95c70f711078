"""The Kubernetes target: namespace, Deployment by digest, the reverse proxy in front of it, Service, HPA, PDB and an
optional Ingress."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_kubernetes as k8s

from infra.config import KubernetesConfig, WorkloadConfig
from infra import READY_PATH
from infra.container import NON_ROOT_USER
from infra.image import image_version
from infra.kubernetes_proxy import KubernetesProxy, KubernetesProxyArgs
from infra.registry import Registry
from infra.rollout import REVISION_HISTORY_LIMIT, ROLLOUT_COMPLETE, keep_serving_while_leaving, rolling_update, spread

APP = "modelship-server"
# The headless Service naming every ready server pod (one DNS A record each): Prometheus finds the pods through it.
PODS_SERVICE = f"{APP}-pods"


@dataclass(frozen=True)
class KubernetesWorkloadArgs:
    image_ref: pulumi.Input[str]
    workload: WorkloadConfig
    kubernetes: KubernetesConfig
    annotations: dict[str, str]
    registry: Registry


def _http(path: str) -> k8s.core.v1.HTTPGetActionArgs:
    return k8s.core.v1.HTTPGetActionArgs(path=path, port="http")


class KubernetesWorkload(pulumi.ComponentResource):
    """`endpoint` is the Service's URL: in-cluster, or `http://<service.host>:<nodePort>` for a NodePort (or the
    Ingress URL when one is enabled); `namespace` (where the headless Service `PODS_SERVICE` names the server pods),
    `provider` and `pull_secrets` (for the stack's registry) are what monitoring attaches to; `selector`: the
    server pods' labels."""

    endpoint: pulumi.Output[str]
    namespace: pulumi.Output[str]
    selector: dict[str, str]
    provider: Optional[k8s.Provider]
    pull_secrets: Optional[list[k8s.core.v1.LocalObjectReferenceArgs]]

    def __init__(self, name: str, args: KubernetesWorkloadArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("modelship:infra:KubernetesWorkload", name, None, opts)
        kube = args.kubernetes
        self._name = name
        self.provider = (
            k8s.Provider(f"{name}-provider", kubeconfig=kube.kubeconfig, opts=pulumi.ResourceOptions(parent=self))
            if kube.kubeconfig else None
        )
        self._child = pulumi.ResourceOptions(parent=self, provider=self.provider)
        self._labels = {
            "app.kubernetes.io/name": APP,
            "app.kubernetes.io/instance": name,
            "app.kubernetes.io/part-of": "modelship",
            "app.kubernetes.io/managed-by": "pulumi",
        }
        self.selector = {k: self._labels[k] for k in ("app.kubernetes.io/name", "app.kubernetes.io/instance")}
        namespace = k8s.core.v1.Namespace(
            f"{name}-ns", metadata=k8s.meta.v1.ObjectMetaArgs(name=kube.namespace, labels=self._labels), opts=self._child
        )
        self.namespace = namespace.metadata.name
        self._meta = k8s.meta.v1.ObjectMetaArgs(name=APP, namespace=self.namespace, labels=self._labels)

        env, secrets = self._auth_env(args.workload)
        self.pull_secrets = self._pull_secrets(args.registry)
        self.deployment = self._deployment(args, self._container(args, env), self.pull_secrets, secrets)
        # Made by the Monitoring component before the stack's Service could select the proxy pods instead (a
        # ServiceMonitor selects this one now): the alias keeps the same object.
        moved = pulumi.Alias(name="monitoring-pods", parent=pulumi.create_urn("monitoring", "modelship:infra:Monitoring"))
        k8s.core.v1.Service(
            f"{name}-pods",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=PODS_SERVICE, namespace=self.namespace,
                                                labels={**self._labels, "app.kubernetes.io/name": PODS_SERVICE}),
            spec=k8s.core.v1.ServiceSpecArgs(
                cluster_ip="None",
                selector=self.selector,
                ports=[k8s.core.v1.ServicePortArgs(name="http", port=args.workload.port, target_port="http")],
            ),
            opts=pulumi.ResourceOptions.merge(self._child, pulumi.ResourceOptions(aliases=[moved])),
        )
        # The Service sends requests to the proxy pods once they run (its selector moves to them on the first `up`
        # with the proxy), or straight to the server pods without one.
        front = self._proxy(args) if kube.proxy.enabled else None
        service = kube.service
        self.service = k8s.core.v1.Service(
            f"{name}-service",
            metadata=self._meta,
            spec=k8s.core.v1.ServiceSpecArgs(
                type=service.type,
                selector=front.selector if front else self.selector,
                ports=[k8s.core.v1.ServicePortArgs(name="http", port=80, target_port="http", node_port=service.node_port)],
            ),
            opts=pulumi.ResourceOptions.merge(self._child, pulumi.ResourceOptions(depends_on=[front] if front else [])),
        )
        if kube.hpa.enabled:
            self._autoscaler(kube)
        if kube.pdb.enabled:
            k8s.policy.v1.PodDisruptionBudget(
                f"{name}-pdb",
                metadata=self._meta,
                spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(
                    min_available=kube.pdb.min_available, selector=k8s.meta.v1.LabelSelectorArgs(match_labels=self.selector)
                ),
                opts=self._child,
            )
        if service.type == "NodePort":
            # The port the API server allocated (or the one asked for), read back from the Service.
            self.endpoint = self.service.spec.apply(lambda spec: f"http://{service.host}:{spec.ports[0].node_port}")
        else:
            self.endpoint = pulumi.Output.concat("http://", self.service.metadata.name, ".", self.namespace, ".svc.cluster.local")
        if kube.ingress.enabled:
            self._ingress(kube)
            self.endpoint = pulumi.Output.from_input(f"http://{kube.ingress.host}")
        self.register_outputs({"endpoint": self.endpoint, "namespace": self.namespace})

    def _proxy(self, args: KubernetesWorkloadArgs) -> KubernetesProxy:
        """Made once the first servers serve (so the endpoint answers when `up` returns); a dependency orders
        creation, it never replaces the proxy on a model update."""
        return KubernetesProxy(f"{self._name}-proxy", KubernetesProxyArgs(
            namespace=self.namespace, image=args.workload.proxy_image, registry=args.registry,
            pull_secrets=self.pull_secrets, backend_selector=self.selector, backend_port=args.workload.port,
            replicas=args.kubernetes.proxy.replicas,
            labels={k: v for k, v in self._labels.items() if k != "app.kubernetes.io/name"},
        ), opts=pulumi.ResourceOptions(parent=self, provider=self.provider, depends_on=[self.deployment]))

    def _auth_env(self, work: WorkloadConfig) -> tuple[list[k8s.core.v1.EnvVarArgs], list[pulumi.Resource]]:
        """The server's environment, and the Secret the bearer token is read from (the Deployment waits for it)."""
        env = [
            k8s.core.v1.EnvVarArgs(name="PORT", value=str(work.port)),
            k8s.core.v1.EnvVarArgs(name="HOST", value="0.0.0.0"),
            k8s.core.v1.EnvVarArgs(name="MODEL_DIR", value="/model"),
        ]
        if work.auth_token is None:
            return env, []
        token = k8s.core.v1.Secret(
            f"{self._name}-auth",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=f"{APP}-auth", namespace=self.namespace, labels=self._labels),
            string_data={"token": pulumi.Output.secret(work.auth_token.get_secret_value())},
            opts=self._child,
        )
        env.append(
            k8s.core.v1.EnvVarArgs(
                name="AUTH_TOKEN",
                value_from=k8s.core.v1.EnvVarSourceArgs(
                    secret_key_ref=k8s.core.v1.SecretKeySelectorArgs(name=token.metadata.name, key="token")
                ),
            )
        )
        return env, [token]

    def _pull_secrets(self, registry: Registry) -> Optional[list[k8s.core.v1.LocalObjectReferenceArgs]]:
        if registry.password is None:
            return None
        auth = pulumi.Output.json_dumps({"auths": {registry.server: {"username": registry.username, "password": registry.password}}})
        pull = k8s.core.v1.Secret(
            f"{self._name}-pull",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=f"{APP}-pull", namespace=self.namespace, labels=self._labels),
            type="kubernetes.io/dockerconfigjson",
            string_data={".dockerconfigjson": pulumi.Output.secret(auth)},
            opts=self._child,
        )
        return [k8s.core.v1.LocalObjectReferenceArgs(name=pull.metadata.name)]

    @staticmethod
    def _container(args: KubernetesWorkloadArgs, env: list[k8s.core.v1.EnvVarArgs]) -> k8s.core.v1.ContainerArgs:
        work = args.workload
        uid, gid = (int(x) for x in NON_ROOT_USER.split(":"))
        return k8s.core.v1.ContainerArgs(
            name="server",
            image=args.image_ref,
            ports=[k8s.core.v1.ContainerPortArgs(name="http", container_port=work.port)],
            env=env,
            resources=k8s.core.v1.ResourceRequirementsArgs(
                requests={"cpu": work.cpu, "memory": work.memory},
                limits={"cpu": work.cpu, "memory": work.memory},
            ),
            readiness_probe=k8s.core.v1.ProbeArgs(http_get=_http(READY_PATH), period_seconds=5, failure_threshold=3),
            liveness_probe=k8s.core.v1.ProbeArgs(http_get=_http("/v2/health/live"), period_seconds=10, failure_threshold=3),
            # Loading the model may take a while on a cold node; liveness waits for this to pass first.
            startup_probe=k8s.core.v1.ProbeArgs(http_get=_http("/v2/health/live"), period_seconds=2, failure_threshold=60),
            security_context=k8s.core.v1.SecurityContextArgs(
                run_as_non_root=True,
                run_as_user=uid,
                run_as_group=gid,
                read_only_root_filesystem=True,
                allow_privilege_escalation=False,
                capabilities=k8s.core.v1.CapabilitiesArgs(drop=["ALL"]),
            ),
            volume_mounts=[k8s.core.v1.VolumeMountArgs(name="tmp", mount_path="/tmp")],
            lifecycle=keep_serving_while_leaving(),
        )

    def _deployment(self, args: KubernetesWorkloadArgs, container: k8s.core.v1.ContainerArgs,
                    pull_secrets: Optional[list[k8s.core.v1.LocalObjectReferenceArgs]],
                    depends: list[pulumi.Resource]) -> k8s.apps.v1.Deployment:
        uid, gid = (int(x) for x in NON_ROOT_USER.split(":"))
        pod_labels = {**self._labels, "app.kubernetes.io/version": pulumi.Output.from_input(args.image_ref).apply(image_version)}
        return k8s.apps.v1.Deployment(
            f"{self._name}-deployment",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=APP, namespace=self.namespace, labels=self._labels,
                                                annotations={**args.annotations, **ROLLOUT_COMPLETE}),
            spec=k8s.apps.v1.DeploymentSpecArgs(
                replicas=None if args.kubernetes.hpa.enabled else args.workload.replicas,
                revision_history_limit=REVISION_HISTORY_LIMIT,
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=self.selector),
                strategy=rolling_update(),
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(labels=pod_labels, annotations=args.annotations),
                    spec=k8s.core.v1.PodSpecArgs(
                        containers=[container],
                        image_pull_secrets=pull_secrets,
                        topology_spread_constraints=[spread(self.selector)],
                        security_context=k8s.core.v1.PodSecurityContextArgs(
                            run_as_non_root=True, run_as_user=uid, fs_group=gid,
                            seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault"),
                        ),
                        automount_service_account_token=False,
                        volumes=[k8s.core.v1.VolumeArgs(name="tmp", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(size_limit="64Mi"))],
                    ),
                ),
            ),
            opts=pulumi.ResourceOptions.merge(self._child, pulumi.ResourceOptions(depends_on=depends)),
        )

    def _autoscaler(self, kube: KubernetesConfig) -> None:
        k8s.autoscaling.v2.HorizontalPodAutoscaler(
            f"{self._name}-hpa",
            metadata=self._meta,
            spec=k8s.autoscaling.v2.HorizontalPodAutoscalerSpecArgs(
                scale_target_ref=k8s.autoscaling.v2.CrossVersionObjectReferenceArgs(
                    api_version="apps/v1", kind="Deployment", name=self.deployment.metadata.name
                ),
                min_replicas=kube.hpa.min_replicas,
                max_replicas=kube.hpa.max_replicas,
                behavior=None if kube.hpa.scale_down_seconds is None else k8s.autoscaling.v2.HorizontalPodAutoscalerBehaviorArgs(
                    scale_down=k8s.autoscaling.v2.HPAScalingRulesArgs(stabilization_window_seconds=kube.hpa.scale_down_seconds),
                ),
                metrics=[
                    k8s.autoscaling.v2.MetricSpecArgs(
                        type="Resource",
                        resource=k8s.autoscaling.v2.ResourceMetricSourceArgs(
                            name="cpu",
                            target=k8s.autoscaling.v2.MetricTargetArgs(type="Utilization", average_utilization=kube.hpa.target_cpu_percent),
                        ),
                    )
                ],
            ),
            opts=self._child,
        )

    def _ingress(self, kube: KubernetesConfig) -> None:
        backend = k8s.networking.v1.IngressBackendArgs(
            service=k8s.networking.v1.IngressServiceBackendArgs(
                name=self.service.metadata.name, port=k8s.networking.v1.ServiceBackendPortArgs(name="http")
            )
        )
        k8s.networking.v1.Ingress(
            f"{self._name}-ingress",
            metadata=self._meta,
            spec=k8s.networking.v1.IngressSpecArgs(
                ingress_class_name=kube.ingress.class_name,
                rules=[
                    k8s.networking.v1.IngressRuleArgs(
                        host=kube.ingress.host,
                        http=k8s.networking.v1.HTTPIngressRuleValueArgs(
                            paths=[k8s.networking.v1.HTTPIngressPathArgs(path="/", path_type="Prefix", backend=backend)]
                        ),
                    )
                ],
            ),
            opts=self._child,
        )
