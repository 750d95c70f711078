"""The stack configuration: one pydantic tree, read from the `modelship:` namespace of the stack config.

`Pulumi.yaml` declares every section with its default (the engine's view); these models are the
authority on what a value may be. `tests/infra/test_config.py` keeps the two in step. An invalid stack
fails in `load()`, before any resource is registered, with one message naming every bad key.
"""
from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal, Optional

import pulumi
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from pydantic.alias_generators import to_camel, to_snake

from app.entry import Task
from model.config import DEFAULT_TASK
from model.gate import Thresholds
from monitoring.spec import Duration

NAMESPACE = "modelship"
# `<repository>@sha256:<64 hex>`: the only form staging and prod may deploy.
DIGEST_REF = re.compile(r"^[^\s@]+@sha256:[0-9a-f]{64}$")
KUBERNETES_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?$")

Quantity = Annotated[str, Field(pattern=KUBERNETES_QUANTITY.pattern)]
Port = Annotated[int, Field(ge=1, le=65535)]


class Section(BaseModel):
    """Stack config keys are camelCase (Pulumi's convention); Python attributes are snake_case."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class ModelConfig(Section):
    """Where the model comes from: a training config file, overrides on top of it, and the store."""

    train_config: str = "model/configs/digits.yaml"
    overrides: dict[str, Any] = Field(default_factory=dict)
    store_dir: str = ".modelship/store"
    # False: only the config itself is trained and gated, never the training config's `search:` fallbacks.
    search: bool = True
    # False on stacks that deploy a promoted digest: they never train.
    train: bool = True

    def training_overrides(self) -> dict[str, Any]:
        """What model/ applies over the training config: the overrides, and no search when it is off."""
        return dict(self.overrides) if self.search else {**self.overrides, "search": []}


class GateConfig(Section):
    """Thresholds per metric, model/'s own type (`loss` is an upper bound, every other metric a lower bound)."""

    thresholds: Thresholds = Thresholds(accuracy=0.9, f1_macro=0.9)
    on_fail: Literal["fail", "keep"] = "fail"


class ImageConfig(Section):
    name: str = Field("modelship/server", pattern=r"^[a-z0-9]+([._/-][a-z0-9]+)*$")
    base_image: str = "modelship/python-base:3.11"
    # False on stacks that deploy a promoted digest: they never build.
    build: bool = True
    push: bool = True


class RegistryConfig(Section):
    """`local`: a registry container this stack runs; `external`: an existing registry with credentials."""

    kind: Literal["local", "external"] = "local"
    image: str = "modelship/registry:2"
    port: Port = 5000
    server: Optional[str] = None
    username: Optional[str] = None
    password: Optional[SecretStr] = None


class WorkloadConfig(Section):
    replicas: int = Field(1, ge=1, le=100)
    port: Port = 8080
    # docker: the host port (on 127.0.0.1) of the reverse proxy in front of the servers; unset: Docker picks one.
    host_port: Optional[Port] = 8080
    cpu: Quantity = "1"
    memory: Quantity = "512Mi"
    auth_token: Optional[SecretStr] = None
    # The reverse proxy's image (toolchain/images.sh builds it; on Kubernetes the program pushes it to the stack's
    # registry), and (docker) how long `up` waits for a new server container to become healthy before it fails (the
    # old one keeps serving).
    proxy_image: str = "modelship/haproxy:2.6"
    ready_timeout_seconds: int = Field(120, ge=5, le=3600)


class HpaConfig(Section):
    enabled: bool = True
    min_replicas: int = Field(2, ge=1)
    max_replicas: int = Field(5, ge=1)
    target_cpu_percent: int = Field(70, ge=1, le=100)
    # How long the HPA waits on lower recommendations before scaling down (unset: Kubernetes' 300 s).
    scale_down_seconds: Optional[int] = Field(None, ge=0, le=3600)


class PdbConfig(Section):
    enabled: bool = True
    min_available: int = Field(1, ge=0)


class IngressConfig(Section):
    enabled: bool = False
    host: Optional[str] = None
    class_name: Optional[str] = None


class ServiceConfig(Section):
    """ClusterIP: reachable inside the cluster only. NodePort: also on every node's `host:nodePort` (the local
    cluster's kube-proxy binds NodePorts to 127.0.0.1 only, docs/cluster.md), which is what the endpoint names."""

    type: Literal["ClusterIP", "NodePort"] = "ClusterIP"
    # Unset: the API server picks a free one from its NodePort range.
    node_port: Optional[int] = Field(None, ge=30000, le=32767)
    host: str = "127.0.0.1"


class ProxyConfig(Section):
    """The reverse proxy (HAProxy, as on Docker) between the stack's Service and the server pods: it sends again, a
    second later, a request that a crashed pod refused, when kube-proxy sends it to another pod; kube-proxy alone
    cannot retry. Off: the Service selects the server pods directly (an ingress controller that retries does the
    same job)."""

    enabled: bool = True
    replicas: int = Field(2, ge=1, le=10)


class KubernetesConfig(Section):
    namespace: str = Field("modelship", pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)
    kubeconfig: Optional[str] = None
    service: ServiceConfig = ServiceConfig()
    hpa: HpaConfig = HpaConfig()
    pdb: PdbConfig = PdbConfig()
    ingress: IngressConfig = IngressConfig()
    proxy: ProxyConfig = ProxyConfig()


class SloConfig(Section):
    availability: float = Field(0.99, gt=0, lt=1)
    latency_p99_seconds: float = Field(0.25, gt=0)


class DriftConfig(Section):
    """Live traffic against the training statistics baked into the image (monitoring/rules.py uses them)."""

    # The window live distributions are taken over.
    window: Duration = "30m"
    # Largest tolerated population stability index of the predictions (classes, or a regression's
    # quantile bins) against the training split.
    prediction_psi: float = Field(0.2, gt=0)
    # Largest tolerated population stability index of any monitored input feature over its training
    # quantile bins.
    input_psi: float = Field(0.2, gt=0)
    # Drift is judged only on at least this many rows in the window: a handful of requests proves nothing.
    min_rows: int = Field(200, ge=1)


class TrafficConfig(Section):
    # Whether the endpoint should see inference traffic at all (prod: yes), and the rate that counts as idle.
    expected: bool = False
    min_rps: float = Field(0.0, ge=0)


class AlertingConfig(Section):
    # Where Alertmanager posts alerts; unset, they are held in Alertmanager (its UI and API show them).
    webhook_url: Optional[str] = Field(None, pattern=r"^https?://\S+$")


class MonitoringImages(Section):
    prometheus: str = "modelship/prometheus:2"
    alertmanager: str = "modelship/alertmanager:0"


class MonitoringConfig(Section):
    enabled: bool = True
    slo: SloConfig = SloConfig()
    drift: DriftConfig = DriftConfig()
    traffic: TrafficConfig = TrafficConfig()
    alerting: AlertingConfig = AlertingConfig()
    images: MonitoringImages = MonitoringImages()
    # docker target: host ports on 127.0.0.1 (unset: Docker picks a free one).
    prometheus_port: Optional[Port] = 9090
    alertmanager_port: Optional[Port] = None
    # kubernetes target: the cluster runs the Prometheus Operator, whose Prometheus selects our
    # ServiceMonitor and PrometheusRule by operatorLabels; no Prometheus of our own is deployed.
    operator: bool = False
    operator_labels: dict[str, str] = Field(default_factory=dict)


class PromotionConfig(Section):
    """What a non-building stack deploys: written by `python -m infra.promote`, reviewed in a PR."""

    image: Optional[str] = None
    model_id: Optional[str] = Field(None, pattern=r"^[0-9a-f]{64}$")
    # What the model predicts, as the source stack recorded it: the monitoring rules follow it.
    task: Task = DEFAULT_TASK
    # The source stack's recorded metrics for the served format, re-checked against this stack's gate.
    metrics: dict[str, float] = Field(default_factory=dict)
    from_stack: Optional[str] = None
    require_digest: bool = False


class StackConfig(Section):
    target: Literal["docker", "kubernetes"] = "docker"
    model: ModelConfig = ModelConfig()
    gate: GateConfig = GateConfig()
    image: ImageConfig = ImageConfig()
    registry: RegistryConfig = RegistryConfig()
    workload: WorkloadConfig = WorkloadConfig()
    kubernetes: KubernetesConfig = KubernetesConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
    promotion: PromotionConfig = PromotionConfig()


class StackConfigError(pulumi.RunError):
    """Printed by the engine without a traceback: the message is the whole story."""


def _cross_checks(cfg: StackConfig, secret_sections: frozenset[str]) -> list[tuple[str, str]]:
    """Rules that span sections; each names the key to change."""
    problems: list[tuple[str, str]] = []
    for section, key in (("registry", "password"), ("workload", "authToken")):
        if getattr(getattr(cfg, section), to_snake(key)) is not None and section not in secret_sections:
            problems.append((f"{section}.{key}", f"must be stored encrypted: `pulumi config set --secret --path {section}.{key}`"))
    promotion = cfg.promotion
    if not cfg.image.build:
        if cfg.model.train:
            problems.append(("model.train", "must be false when image.build is false (a promoted image is never retrained)"))
        if not (promotion.image or promotion.from_stack):
            problems.append(("promotion.image", "required when image.build is false: run `python -m infra.promote`"))
        if promotion.image and not promotion.model_id:
            problems.append(("promotion.modelId", "required with promotion.image (the gate re-checks its metrics)"))
        if promotion.image and not promotion.metrics:
            problems.append(("promotion.metrics", "required with promotion.image (the gate re-checks them)"))
    if promotion.require_digest and promotion.image and not DIGEST_REF.match(promotion.image):
        problems.append(("promotion.image", f"must be pinned by digest (`repo@sha256:<64 hex>`), got {promotion.image!r}"))
    if not cfg.image.build and cfg.gate.on_fail == "keep":
        problems.append(("gate.onFail", "keep needs image.build (a promoted image that fails this gate is refused, never kept)"))
    if cfg.image.build and not cfg.model.train:
        problems.append(("model.train", "must be true when image.build is true (the image is built from a gated model)"))
    registry = cfg.registry
    if registry.kind == "external":
        for key in ("server", "username", "password"):
            if getattr(registry, key) is None:
                problems.append((f"registry.{key}", "required when registry.kind is external"))
    if cfg.target == "kubernetes" and registry.kind == "local":
        problems.append(("registry.kind", "must be external for the kubernetes target (the cluster pulls from it)"))
    hpa = cfg.kubernetes.hpa
    if hpa.max_replicas < hpa.min_replicas:
        problems.append(("kubernetes.hpa.maxReplicas", f"must be >= minReplicas ({hpa.min_replicas})"))
    if cfg.monitoring.operator and cfg.target != "kubernetes":
        problems.append(("monitoring.operator", "the Prometheus Operator is a kubernetes-target option"))
    service = cfg.kubernetes.service
    if service.node_port is not None and service.type != "NodePort":
        problems.append(("kubernetes.service.nodePort", "set only with kubernetes.service.type NodePort"))
    if cfg.kubernetes.ingress.enabled and not cfg.kubernetes.ingress.host:
        problems.append(("kubernetes.ingress.host", "required when the ingress is enabled"))
    return problems


def _key(loc: tuple[Any, ...]) -> str:
    head, *rest = [str(p) for p in loc] or ["?"]
    return f"{NAMESPACE}:{head}" + "".join(f".{p}" for p in rest)


def parse(raw: dict[str, Any], stack: str, secret_sections: frozenset[str] = frozenset()) -> StackConfig:
    """Validates a `{section: value}` mapping (keys without the namespace); raises StackConfigError listing every problem.

    `secret_sections`: the sections the stack stores encrypted; credentials elsewhere are refused.
    """
    problems: list[tuple[str, str]] = []
    try:
        cfg = StackConfig.model_validate(raw)
    except ValidationError as err:
        for e in err.errors():
            if e["type"] == "extra_forbidden":
                problems.append((_key(e["loc"]), "unknown key (Pulumi.yaml lists every known key)"))
                continue
            got = "" if e["type"] == "missing" else f" (got {json.dumps(e.get('input'), default=str)[:80]})"
            problems.append((_key(e["loc"]), e["msg"] + got))
    else:
        problems = [(f"{NAMESPACE}:{key}", why) for key, why in _cross_checks(cfg, secret_sections)]
    if problems:
        lines = "\n".join(f"  - {key}: {why}" for key, why in problems)
        raise StackConfigError(
            f"stack '{stack}' has {len(problems)} invalid config value(s); nothing was registered.\n{lines}\n"
            f"Fix them in Pulumi.{stack}.yaml (or `pulumi config set --path`); Pulumi.yaml documents every key."
        )
    return cfg


def _decode(value: str) -> Any:
    # The engine hands objects and numbers over as JSON text and plain strings as they are.
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def load() -> StackConfig:
    """The current stack's config; the only place the program reads the stack config."""
    prefix = f"{NAMESPACE}:"
    # The engine may hand config over in the environment or set it in the runtime store (tests do the latter).
    keys = set(pulumi.runtime.get_config_env()) | set(pulumi.runtime.config.CONFIG.get())
    raw = {
        key[len(prefix):]: _decode(pulumi.runtime.get_config(key))
        for key in keys
        if key.startswith(prefix)
    }
    env_secret = set(pulumi.runtime.get_config_secret_keys_env() or ())
    secret = frozenset(
        section for section in raw
        if pulumi.runtime.is_config_secret(prefix + section) or prefix + section in env_secret
    )
    return parse(raw, pulumi.get_stack(), secret)
