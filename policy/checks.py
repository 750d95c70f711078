"""The guardrails as plain functions of a resource's URN, type and inputs: one list of problems per resource.

`__main__.py` wires them into the pack; the project's tests call them on the resources the real program
declares. An input not yet known at preview raises inside pulumi-policy, which then skips that resource.

The gate and digest rules are about the model being served. The monitoring component's Prometheus and
Alertmanager and the Kubernetes target's reverse proxy are third-party images with no gate; they are told apart
by their URN (children of `modelship:infra:Monitoring` or `modelship:infra:KubernetesProxy`), not by a label they
could forget.
"""
from __future__ import annotations

import re
from typing import Any, Callable, Iterable, Mapping

GATE_PASSED = "ai.modelship.gate.passed"
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
BUILT_IMAGE = "docker-build:index:Image"
# The Docker target's resources (pulumi-docker): a container names its image by id, the pulled image by reference.
CONTAINER = "docker:index/container:Container"
PULLED_IMAGE = "docker:index/remoteImage:RemoteImage"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
# The components whose images are not the model server.
THIRD_PARTY = ("modelship:infra:Monitoring", "modelship:infra:KubernetesProxy")

Rule = Callable[[str, str, Mapping[str, Any]], list[str]]


def serving(urn: str) -> bool:
    """Everything but the third-party components' children: `urn:pulumi:<stack>::<project>::<parent types$type>::<name>`."""
    qualified_type = urn.split("::")[2] if urn.count("::") >= 3 else ""
    return not any(f"{component}$" in qualified_type for component in THIRD_PARTY)


def _known(value: Any) -> bool:
    return isinstance(value, str) and value != ""


def _pod_spec(props: Mapping[str, Any]) -> Mapping[str, Any]:
    return ((props.get("spec") or {}).get("template") or {}).get("spec") or {}


def _pod_annotations(props: Mapping[str, Any]) -> Mapping[str, Any]:
    return (((props.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("annotations") or {}


def _images(resource_type: str, props: Mapping[str, Any]) -> Iterable[str]:
    """Every image reference a resource deploys or publishes, where already known."""
    if resource_type == BUILT_IMAGE:
        refs = props.get("tags") or []
    elif resource_type == PULLED_IMAGE:
        refs = [props.get("name")]
    elif resource_type == CONTAINER:
        refs = [props.get("image")]
    elif resource_type == DEPLOYMENT:
        refs = [c.get("image") for c in _pod_spec(props).get("containers") or []]
    else:
        refs = []
    return [r for r in refs if _known(r)]


def gate_labels(urn: str, resource_type: str, props: Mapping[str, Any]) -> list[str]:
    """A serving image, and a Deployment serving one, carry the gate's verdict, and it says passed."""
    if not serving(urn):
        return []
    if resource_type == BUILT_IMAGE:
        verdict, where = (props.get("labels") or {}).get(GATE_PASSED), "image label"
    elif resource_type == DEPLOYMENT:
        verdict, where = _pod_annotations(props).get(GATE_PASSED), "pod annotation"
    else:
        return []
    if verdict != "true":
        return [f"{where} {GATE_PASSED} is {verdict!r}, not 'true': only a model that passed the gate may ship"]
    return []


def no_latest(urn: str, resource_type: str, props: Mapping[str, Any]) -> list[str]:
    problems = []
    for ref in _images(resource_type, props):
        if DIGEST.search(ref):
            continue
        name = ref.rsplit("/", 1)[-1]
        if ":" not in name or name.endswith(":latest"):
            problems.append(f"image {ref!r} uses the `latest` tag (explicitly or by omission): pin a tag or digest")
    return problems


def hardened_workload(urn: str, resource_type: str, props: Mapping[str, Any]) -> list[str]:
    """Kubernetes workloads: probes, CPU and memory limits, non-root."""
    if resource_type != DEPLOYMENT:
        return []
    pod = _pod_spec(props)
    pod_non_root = (pod.get("securityContext") or {}).get("runAsNonRoot") is True
    problems = []
    for c in pod.get("containers") or []:
        name = c.get("name", "?")
        for probe in ("readinessProbe", "livenessProbe"):
            if not c.get(probe):
                problems.append(f"container {name!r} has no {probe}")
        limits = (c.get("resources") or {}).get("limits") or {}
        for resource in ("cpu", "memory"):
            if resource not in limits:
                problems.append(f"container {name!r} has no {resource} limit")
        if not (pod_non_root or (c.get("securityContext") or {}).get("runAsNonRoot") is True):
            problems.append(f"container {name!r} may run as root: set securityContext.runAsNonRoot")
    return problems


def digest_pinned(urn: str, resource_type: str, props: Mapping[str, Any]) -> list[str]:
    """On the stacks that must deploy exactly what was promoted (prod): the serving image."""
    if resource_type not in (DEPLOYMENT, PULLED_IMAGE) or not serving(urn):
        return []
    return [f"image {ref!r} is not pinned by digest (`@sha256:...`)" for ref in _images(resource_type, props) if not DIGEST.search(ref)]


def stack_of(urn: str) -> str:
    """`urn:pulumi:<stack>::<project>::...` -> stack."""
    return urn.split(":", 2)[2].split("::", 1)[0]


# Every stack: name -> (description, rule). `digest_pinned` applies to the stacks the pack's config names.
ALWAYS: dict[str, tuple[str, Rule]] = {
    "image-gate-passed": ("Serving images and Deployments carry passing gate labels.", gate_labels),
    "no-latest-tags": ("No image is referenced by the `latest` tag.", no_latest),
    "kubernetes-workload-hardened": ("Kubernetes workloads have probes, limits and run non-root.", hardened_workload),
}
PINNED_STACKS = ("prod",)
