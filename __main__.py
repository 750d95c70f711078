"""modelship: a gated model, its image, the registry it lives in, the workload serving it, and its monitoring."""
import pulumi

from infra import capacity, config, gate, outputs
from infra.container import ContainerWorkload, ContainerWorkloadArgs
from infra.image import ModelImage, ModelImageArgs
from infra.kubernetes import KubernetesWorkload, KubernetesWorkloadArgs
from infra.monitoring import Monitoring, monitoring_args
from infra.registry import Registry, RegistryArgs

# 1. The stack's config, all of it valid, or nothing happens.
cfg = config.load()
stack = pulumi.get_stack()

# 2. The gate decides which model may ship, before any resource is declared.
if cfg.image.build:
    model = gate.gated_model(cfg.model, cfg.gate, stack)
else:
    promotion = gate.resolve_reference(cfg.promotion)
    model = gate.promoted_model(promotion, cfg.gate, stack, cfg.registry)

# 2b. On Kubernetes, the rollout's peak must fit the namespace's quota and the nodes, or pods would wait Pending
# mid-rollout. Read from the cluster at preview (which `pulumi up` runs first), before any resource is declared.
if cfg.target == "kubernetes" and pulumi.runtime.is_dry_run():
    capacity.check(cfg, stack)

# 3. The image: built here from the gated model (dev), or the digest promoted from the stack before.
registry = Registry("registry", RegistryArgs(registry=cfg.registry))
if cfg.image.build:
    image = ModelImage("image", ModelImageArgs(model_id=model.model_id, entry_dir=model.entry_dir, gate_labels=model.labels(),
                                               image=cfg.image, registry=registry))
    image_ref = image.ref
else:
    image_ref = promotion.image

# 4. The workload serving it.
labels = model.labels()
if cfg.target == "docker":
    workload = ContainerWorkload("server", ContainerWorkloadArgs(image_ref=image_ref, workload=cfg.workload, labels=labels))
else:
    workload = KubernetesWorkload("server", KubernetesWorkloadArgs(
        image_ref=image_ref, workload=cfg.workload, kubernetes=cfg.kubernetes, annotations=labels,
        registry=registry,
    ))

# 5. Its monitoring: scrapes the workload, alerts on its SLOs, drift and a model id other than this one.
monitoring = None
if cfg.monitoring.enabled:
    if cfg.target == "docker":
        attach = dict(network_name=workload.network_name)
    else:
        attach = dict(namespace=workload.namespace, provider=workload.provider,
                      registry=registry, pull_secrets=workload.pull_secrets)
    monitoring = Monitoring("monitoring", monitoring_args(cfg, stack, model.model_id, task=model.task, **attach))

# 6. What the stack tells its users.
outputs.export(endpoint=workload.endpoint, image_ref=image_ref, model=model, auth=cfg.workload.auth_token is not None,
               monitoring=monitoring)
