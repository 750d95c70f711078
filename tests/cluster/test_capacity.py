"""Capacity at preview (infra/capacity.py) against the local cluster's real API: a rollout whose peak does not fit
the namespace's ResourceQuota or the nodes' allocatable fails the preview with the numbers, before anything is
registered; one that fits passes."""
from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pytest
from pulumi import automation as auto

from infra import capacity
from infra.config import StackConfig
from infra.kube_api import KubeApi
from tests.cluster.kube import ROOT, Cluster
from tests.infra.engine import EngineStack, engine_stack
from tests.infra.registry import free_port, local_registry, push_labelled

MODEL_ID = "6" * 64
METRICS = {"accuracy": 0.97, "f1_macro": 0.96}


def config(cluster: Cluster, namespace: str, cpu: str, memory: str = "128Mi", image: str = "") -> dict[str, Any]:
    return {
        "target": "kubernetes",
        "model": {"train": False},
        "image": {"build": False},
        "gate": {"thresholds": {"accuracy": 0.9}},
        "registry": {"kind": "external", "server": image.split("/", 1)[0] or "localhost:5000", "username": "modelship"},
        "workload": {"replicas": 2, "cpu": cpu, "memory": memory},
        "kubernetes": {"namespace": namespace, "kubeconfig": str(cluster.kubeconfig)},
        "promotion": {"image": image or None, "modelId": MODEL_ID, "metrics": METRICS},
    }


def stack_config(raw: dict[str, Any]) -> StackConfig:
    return StackConfig.model_validate(raw)


def test_a_rollout_that_fits_passes(cluster: Cluster, namespace: str) -> None:
    capacity.check(stack_config(config(cluster, namespace, "10m", "16Mi")), "k8s-capacity")


def test_a_pod_larger_than_any_node_fails_with_the_numbers(cluster: Cluster, namespace: str) -> None:
    api = KubeApi(str(cluster.kubeconfig))
    nodes, _ = capacity.free_nodes(api, namespace)
    assert nodes, "the cluster has no schedulable node"
    too_big = max(n.cpu_m for n in nodes) + 1000
    with pytest.raises(capacity.CapacityError) as err:
        capacity.check(stack_config(config(cluster, namespace, f"{too_big}m")), "k8s-capacity", api)
    message = str(err.value)
    assert f"3 server pods (replicas 2 + maxSurge 1) of cpu {too_big}m" in message, message
    assert "3 of them fit on no node (server, server, server)" in message, message
    for node in nodes:
        assert f"{node.name} cpu {node.cpu_m}m" in message, message
    assert "Pulumi.k8s-capacity.yaml" in message and "nothing was registered" in message


def test_the_namespaces_resource_quota_is_checked(cluster: Cluster, namespace: str) -> None:
    cluster.apply(
        "apiVersion: v1\nkind: ResourceQuota\nmetadata: {name: small}\n"
        "spec: {hard: {requests.cpu: 400m, limits.memory: 1Gi, pods: '4'}}\n",
        namespace,
    )
    with pytest.raises(capacity.CapacityError) as err:
        capacity.check(stack_config(config(cluster, namespace, "100m", "128Mi")), "k8s-capacity")
    message = str(err.value)
    # 3 server pods of 100m + 2 reverse proxy pods at 50m + Prometheus and Alertmanager at 100m each;
    # 3 x 128Mi + 2 x 128Mi + 2 x 512Mi of limits; 7 pods.
    assert "ResourceQuota 'small' allows requests.cpu 400m; the peak needs 600m" in message, message
    assert "ResourceQuota 'small' allows limits.memory 1Gi; the peak needs 1664Mi" in message, message
    assert "ResourceQuota 'small' allows pods 4; the peak needs 7" in message, message


@pytest.fixture
def preview_stack(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EngineStack, str]]:
    if shutil.which("pulumi") is None:
        pytest.fail("the pulumi CLI is missing: toolchain/bootstrap.sh --kubernetes, then `source toolchain/env.sh`", pytrace=False)
    labels = {"ai.modelship.model_id": MODEL_ID, **{f"ai.modelship.gate.{k}": f"{v:.4g}" for k, v in METRICS.items()}}
    with local_registry(free_port()) as server:
        image = push_labelled(server, "modelship/server-capacity", labels, tmp_path_factory.mktemp("capacity-image"))
        es = engine_stack(tmp_path_factory.mktemp("k8s-capacity"), "k8s-capacity")
        for package in ROOT.glob("*/__init__.py"):
            link = es.workdir / package.parent.name
            if not link.exists():
                link.symlink_to(package.parent)
        yield es, image
        es.stack.workspace.remove_stack("k8s-capacity")


def test_pulumi_preview_fails_before_registering_anything(
    cluster: Cluster, namespace: str, preview_stack: tuple[EngineStack, str]
) -> None:
    es, image = preview_stack
    api = KubeApi(str(cluster.kubeconfig))
    nodes, _ = capacity.free_nodes(api, namespace)
    too_big = max(n.cpu_m for n in nodes) + 1000
    es.write_config(config(cluster, namespace, f"{too_big}m", image=image))
    es.stack.set_config("modelship:registry.password", auto.ConfigValue("local-test", secret=True), path=True)
    with pytest.raises(auto.CommandError) as failed:
        es.stack.preview(on_output=print)
    assert "the rollout does not fit cluster" in str(failed.value) and "fit on no node" in str(failed.value)
    assert es.stack.export_stack().deployment.get("resources") in (None, [])
