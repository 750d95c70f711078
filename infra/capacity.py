"""Capacity at preview: the rollout's peak pods must fit the namespace's ResourceQuota and the nodes.

At the peak of a rolling update the server runs `replicas + maxSurge` pods (maxUnavailable is 0), next to
the stack's reverse proxy pods, Prometheus and Alertmanager. When those requests do not fit, the cluster finds out
mid-rollout: the surge pod stays Pending and the update hangs until its timeout. Checked against what the API
server says before anything is registered, so `pulumi preview` (and the preview `pulumi up` runs first) fails
instead, with the numbers. Pods of other namespaces hold their requests on the nodes; the stack's own namespace is
replaced by the plan (its running pods are the ones the rollout replaces).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from infra import kubernetes_proxy as kube_proxy
from infra.config import StackConfig, StackConfigError
from infra.container import cpus, memory_bytes
from infra.kube_api import KubeApi, KubeApiError
from infra.monitoring import POD_CPU_LIMIT, POD_CPU_REQUEST, POD_MEMORY
from infra.rollout import MAX_SURGE

# Taints a pod without tolerations never lands on (a cordoned, NotReady or KWOK-only node).
_REPELLING = {"NoSchedule", "NoExecute"}


class CapacityError(StackConfigError):
    """The rollout cannot fit: printed by the engine as it is, without a traceback."""


@dataclass(frozen=True)
class Pod:
    what: str
    cpu_m: int
    memory: int
    cpu_limit_m: int
    memory_limit: int


@dataclass
class Node:
    name: str
    cpu_m: int
    memory: int

    def fits(self, pod: Pod) -> bool:
        return pod.cpu_m <= self.cpu_m and pod.memory <= self.memory


def _milli(quantity: str) -> int:
    return round(cpus(quantity) * 1000)


def _mi(n: int) -> str:
    return f"{n / 2**20:.0f}Mi"


def peak_pods(cfg: StackConfig) -> tuple[list[Pod], str]:
    """The pods running at the rollout's peak, and how their number comes about."""
    kube, work = cfg.kubernetes, cfg.workload
    # Under the HPA the rollout starts from at least minReplicas.
    replicas = kube.hpa.min_replicas if kube.hpa.enabled else work.replicas
    # The server's limits are its requests (infra/kubernetes.py).
    server = Pod("server", _milli(work.cpu), memory_bytes(work.memory), _milli(work.cpu), memory_bytes(work.memory))
    pods = [server] * (replicas + MAX_SURGE)
    how = f"{replicas + MAX_SURGE} server pods (replicas {replicas} + maxSurge {MAX_SURGE}) of cpu {work.cpu}, memory {work.memory}"
    if kube.proxy.enabled:
        # A model rollout leaves the proxy pods as they are: they run, they do not surge.
        proxy = Pod("proxy", _milli(kube_proxy.CPU_REQUEST), memory_bytes(kube_proxy.MEMORY),
                    _milli(kube_proxy.CPU_LIMIT), memory_bytes(kube_proxy.MEMORY))
        pods += [proxy] * kube.proxy.replicas
        how += (f", {kube.proxy.replicas} reverse proxy pods (cpu {kube_proxy.CPU_REQUEST}, memory {kube_proxy.MEMORY}"
                f" each)")
    if cfg.monitoring.enabled and not cfg.monitoring.operator:
        pods += [Pod(name, _milli(POD_CPU_REQUEST), memory_bytes(POD_MEMORY), _milli(POD_CPU_LIMIT), memory_bytes(POD_MEMORY))
                 for name in ("prometheus", "alertmanager")]
        how += f", Prometheus and Alertmanager (cpu {POD_CPU_REQUEST}, memory {POD_MEMORY} each)"
    return pods, how


def _requests(pod: dict[str, Any]) -> tuple[int, int]:
    cpu = memory = 0
    for container in pod["spec"].get("containers", []):
        requests = (container.get("resources") or {}).get("requests") or {}
        cpu += _milli(requests.get("cpu", "0"))
        memory += memory_bytes(requests.get("memory", "0"))
    return cpu, memory


def _schedulable(node: dict[str, Any]) -> bool:
    ready = any(c["type"] == "Ready" and c["status"] == "True" for c in node["status"].get("conditions", []))
    tainted = any(t.get("effect") in _REPELLING for t in node["spec"].get("taints") or [])
    return ready and not tainted and not node["spec"].get("unschedulable")


def free_nodes(api: KubeApi, namespace: str) -> tuple[list[Node], list[str]]:
    """Schedulable nodes with what other namespaces' pods leave of their allocatable; the others' names."""
    nodes, skipped = {}, []
    for item in api.get("/api/v1/nodes")["items"]:
        name = item["metadata"]["name"]
        if not _schedulable(item):
            skipped.append(name)
            continue
        allocatable = item["status"]["allocatable"]
        nodes[name] = Node(name, _milli(allocatable["cpu"]), memory_bytes(allocatable["memory"]))
    pods = api.get("/api/v1/pods", fieldSelector="status.phase!=Succeeded,status.phase!=Failed")["items"]
    for pod in pods:
        node = nodes.get(pod["spec"].get("nodeName", ""))
        if node is None or pod["metadata"]["namespace"] == namespace:
            continue
        cpu, memory = _requests(pod)
        node.cpu_m -= cpu
        node.memory -= memory
    return list(nodes.values()), skipped


def unplaced(pods: list[Pod], nodes: list[Node]) -> list[Pod]:
    """Pods left over when each, largest first, takes the node with the most CPU left that fits it."""
    left = [Node(n.name, n.cpu_m, n.memory) for n in nodes]
    missing = []
    for pod in sorted(pods, key=lambda p: (p.cpu_m, p.memory), reverse=True):
        candidates = [n for n in left if n.fits(pod)]
        if not candidates:
            missing.append(pod)
            continue
        node = max(candidates, key=lambda n: (n.cpu_m, n.memory))
        node.cpu_m -= pod.cpu_m
        node.memory -= pod.memory
    return missing


# ResourceQuota keys -> (the peak's figure for it, how to show it).
_QUOTA_KEYS = {
    "cpu": lambda pods: sum(p.cpu_m for p in pods), "requests.cpu": lambda pods: sum(p.cpu_m for p in pods),
    "limits.cpu": lambda pods: sum(p.cpu_limit_m for p in pods),
    "memory": lambda pods: sum(p.memory for p in pods), "requests.memory": lambda pods: sum(p.memory for p in pods),
    "limits.memory": lambda pods: sum(p.memory_limit for p in pods),
    "pods": len, "count/pods": len,
}


def _quantity(key: str, value: str) -> int:
    return int(value) if "pods" in key else _milli(value) if "cpu" in key else memory_bytes(value)


def _shown(key: str, value: int) -> str:
    return str(value) if "pods" in key else f"{value}m" if "cpu" in key else _mi(value)


def quota_problems(quotas: list[dict[str, Any]], pods: list[Pod]) -> list[str]:
    """What the namespace's ResourceQuotas refuse of the peak."""
    problems = []
    for quota in quotas:
        for key, hard in (quota.get("spec") or {}).get("hard", {}).items():
            if key in _QUOTA_KEYS and (need := _QUOTA_KEYS[key](pods)) > _quantity(key, hard):
                problems.append(f"ResourceQuota '{quota['metadata']['name']}' allows {key} {hard}; the peak needs {_shown(key, need)}")
    return problems


def check(cfg: StackConfig, stack: str, api: Optional[KubeApi] = None) -> None:
    """Raises CapacityError naming the numbers when the rollout's peak does not fit."""
    namespace = cfg.kubernetes.namespace
    pods, how = peak_pods(cfg)
    try:
        api = api or KubeApi(cfg.kubernetes.kubeconfig)
        quotas = api.get(f"/api/v1/namespaces/{namespace}/resourcequotas")["items"]
        nodes, skipped = free_nodes(api, namespace)
    except KubeApiError as err:
        raise CapacityError(f"stack '{stack}': could not check that the rollout fits the cluster; nothing was registered.\n"
                            f"  {err}") from None
    problems = quota_problems(quotas, pods)
    missing = unplaced(pods, nodes)
    if missing:
        free = "; ".join(f"{n.name} cpu {n.cpu_m}m, memory {_mi(n.memory)}" for n in nodes) or "no schedulable node"
        problems.append(
            f"{len(missing)} of them fit on no node ({', '.join(p.what for p in missing)}): free after other namespaces' "
            f"requests: {free}" + (f" (not schedulable: {', '.join(skipped)})" if skipped else "")
        )
    if problems:
        total = f"cpu {sum(p.cpu_m for p in pods)}m, memory {_mi(sum(p.memory for p in pods))}"
        lines = "\n".join(f"  - {p}" for p in problems)
        raise CapacityError(
            f"stack '{stack}': the rollout does not fit cluster {api.server}, namespace {namespace}; nothing was registered.\n"
            f"At its peak it runs {how}: {total}.\n{lines}\n"
            f"Lower modelship:workload.cpu / workload.memory or the replicas (kubernetes.hpa.minReplicas) in "
            f"Pulumi.{stack}.yaml, or give the cluster room (nodes, or the quota), then preview again."
        )
