"""The Kubernetes target through the real engine and the real kubernetes provider, against the local cluster.

A staging-like stack (kubernetes target, a promoted image pinned by digest, nothing built): `up` creates the
workload and the provider's await sees the rollout complete; a second `up` changes nothing; a new digest
rolls out without ever dropping below the desired ready replicas (maxUnavailable 0); a rollout whose pods
never turn Ready fails the `up` and leaves the previous ReplicaSet serving; `destroy` removes everything.
The tests run in order on one stack. A missing part (pulumi CLI, kubernetes plugin) fails them, named.
"""
from __future__ import annotations

import importlib.metadata
import json
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pulumi import automation as auto

from tests.cluster.kube import ROOT, Cluster, eventually
from tests.infra.engine import EngineStack, engine_stack
from tests.infra.registry import free_port, local_registry, push_labelled

STACK = "clustertest"
NAMESPACE = "modelship-staging-test"
APP = "modelship-server"
REPLICAS = 2  # the HPA's minReplicas, which the Deployment is scaled to with no metrics server
MODEL_ID = "5" * 64
ROLLOUT_TIMEOUT_S = 20  # only the never-ready rollout carries it: KWOK readies a pod in about a second
REQUIRED_KINDS = {"Namespace", "Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "ConfigMap"}


METRICS = {"accuracy": 0.97, "f1_macro": 0.96}


@pytest.fixture(scope="module")
def digest(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[int], str]]:
    """`digest(n)`: the n-th of three promoted images (1..3), pinned by digest in a real registry and labelled
    with MODEL_ID and its gate figures, as the program reads them back at preview (infra/gate.py bind_to_image).
    KWOK never pulls them."""
    labels = {"ai.modelship.model_id": MODEL_ID, **{f"ai.modelship.gate.{k}": f"{v:.4g}" for k, v in METRICS.items()}}
    with local_registry(free_port()) as server:
        tmp = tmp_path_factory.mktemp("promoted")
        refs = {n: push_labelled(server, f"modelship/server-{n}", labels, tmp / str(n)) for n in (1, 2, 3)}
        yield refs.__getitem__


def missing_parts() -> list[str]:
    """What these tests need and this machine lacks, each named."""
    if shutil.which("pulumi") is None:
        return ["the pulumi CLI (toolchain/pulumi.sh, then `source toolchain/env.sh`)"]
    version = importlib.metadata.version("pulumi_kubernetes")
    listed = subprocess.run(["pulumi", "plugin", "ls", "--json"], capture_output=True, text=True)
    have = {(p["name"], p["version"].lstrip("v")) for p in json.loads(listed.stdout or "[]") if p.get("kind") == "resource"}
    if ("kubernetes", version) not in have:
        return [f"the pulumi-resource-kubernetes {version} plugin (the version of the pulumi_kubernetes SDK; toolchain/pulumi.sh)"]
    return []


def stack_config(cluster: Cluster, image: str) -> dict[str, Any]:
    """Pulumi.staging.yaml's shape, pointed at the local cluster, with a promoted digest."""
    return {
        "target": "kubernetes",
        "model": {"train": False},
        "image": {"build": False},
        "gate": {"thresholds": {"accuracy": 0.93, "f1_macro": 0.93}, "onFail": "fail"},
        "registry": {"kind": "external", "server": image.split("/", 1)[0], "username": "modelship"},
        "workload": {"replicas": REPLICAS, "port": 8080, "cpu": "100m", "memory": "128Mi"},
        "kubernetes": {"namespace": NAMESPACE, "kubeconfig": str(cluster.kubeconfig)},
        "promotion": {
            "image": image,
            "modelId": MODEL_ID,
            "metrics": METRICS,
            "requireDigest": True,
        },
    }


@pytest.fixture(scope="module")
def staging(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineStack]:
    missing = missing_parts()
    if missing:
        pytest.fail("the Pulumi-on-Kubernetes tests need: " + "; ".join(missing), pytrace=False)
    es = engine_stack(tmp_path_factory.mktemp("k8s-engine"), STACK)
    # The real program runs behind tests/cluster/program.py, which adds the never-ready switch.
    main = es.workdir / "__main__.py"
    main.unlink()
    shutil.copy(ROOT / "tests" / "cluster" / "program.py", main)
    (es.workdir / "modelship_main.py").symlink_to(ROOT / "__main__.py")
    # Every top-level package the program may import, including any the shared harness does not link yet.
    for package in ROOT.glob("*/__init__.py"):
        link = es.workdir / package.parent.name
        if not link.exists():
            link.symlink_to(package.parent)
    yield es
    # Whatever happened above, leave the cluster without the stack's resources.
    es.stack.destroy(on_output=print)
    es.stack.workspace.remove_stack(STACK)


def deploy(es: EngineStack, cluster: Cluster, image: str, never_ready: bool = False) -> auto.UpResult:
    es.write_config(stack_config(cluster, image))
    # An authenticated registry, as staging's: the password only ever stored encrypted.
    es.stack.set_config("modelship:registry.password", auto.ConfigValue("local-test", secret=True), path=True)
    es.stack.set_config("modelship-test:rolloutTimeoutSeconds", auto.ConfigValue(str(ROLLOUT_TIMEOUT_S)))
    es.stack.set_config("modelship-test:neverReady", auto.ConfigValue("true" if never_ready else "false"))
    return es.stack.up(on_output=print)


def declared_kubernetes_objects(es: EngineStack) -> set[tuple[str, str, str]]:
    """(kind, namespace, name) of every Kubernetes object in the stack's state."""
    objects = set()
    for r in es.stack.export_stack().deployment.get("resources", []):
        kind = r["type"].rsplit(":", 1)[-1]
        if r["type"].startswith("kubernetes:") and kind != "Provider" and "outputs" in r:
            metadata = r["outputs"]["metadata"]
            objects.add((kind, metadata.get("namespace", ""), metadata["name"]))
    return objects


def ready_endpoints(cluster: Cluster) -> set[str]:
    """Addresses the workload's Service routes to."""
    slices = cluster.get("endpointslices", "-n", NAMESPACE, "-l", f"kubernetes.io/service-name={APP}")["items"]
    return {e["addresses"][0] for s in slices for e in s.get("endpoints") or [] if e["conditions"].get("ready")}


class ReadyWatch:
    """Samples the Deployment's available replicas while an update runs: the floor is what users saw."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster, self.samples = cluster, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            status = self.cluster.get("deployment", APP, "-n", NAMESPACE)["status"]
            self.samples.append(status.get("availableReplicas", 0))
            self._stop.wait(0.25)

    def __enter__(self) -> ReadyWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def test_up_creates_the_workload_and_awaits_its_rollout(staging: EngineStack, cluster: Cluster, digest: Callable[[int], str]) -> None:
    result = deploy(staging, cluster, digest(1))
    assert result.summary.result == "succeeded"
    # The provider returned only once the rollout was complete: every pod it awaited is Ready.
    deployment = cluster.get("deployment", APP, "-n", NAMESPACE)
    assert deployment["status"]["readyReplicas"] == deployment["status"]["replicas"] >= 1
    # The Deployment leaves its replica count to the HPA, which raises it to minReplicas within a sync period.
    cluster.kubectl("wait", f"--for=jsonpath={{.status.readyReplicas}}={REPLICAS}", f"deployment/{APP}",
                    "-n", NAMESPACE, "--timeout=60s")
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert cluster.pods_by_image(NAMESPACE, APP) == {digest(1): [True] * REPLICAS}

    declared = declared_kubernetes_objects(staging)
    assert REQUIRED_KINDS <= {kind for kind, _, _ in declared}, f"the stack declares only {sorted(declared)}"
    for kind, namespace, name in declared:
        where = ["-n", namespace] if namespace else []
        assert cluster.kubectl("get", kind, name, *where, check=False).returncode == 0, f"{kind} {name} is missing"
    assert cluster.get("namespace", NAMESPACE)["status"]["phase"] == "Active"
    assert cluster.get("service", APP, "-n", NAMESPACE)["spec"]["ports"][0]["port"] == 80
    hpa = cluster.get("hpa", APP, "-n", NAMESPACE)
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["scaleTargetRef"]["name"]) == (REPLICAS, APP)
    assert cluster.get("pdb", APP, "-n", NAMESPACE)["spec"]["minAvailable"] == 1
    eventually(lambda: len(ready_endpoints(cluster)) == REPLICAS, f"the Service routes to {REPLICAS} Ready pods")

    outputs = result.outputs
    assert outputs["endpoint"].value == f"http://{APP}.{NAMESPACE}.svc.cluster.local"
    assert outputs["imageRef"].value == digest(1)
    assert outputs["modelId"].value == MODEL_ID


def test_a_second_up_changes_nothing(staging: EngineStack, cluster: Cluster, digest: Callable[[int], str]) -> None:
    result = deploy(staging, cluster, digest(1))
    changes = {op: n for op, n in (result.summary.resource_changes or {}).items() if op != "same"}
    assert changes == {}, f"a repeated up changed {changes}"


def test_a_new_digest_rolls_out_without_dropping_ready_replicas(staging: EngineStack, cluster: Cluster, digest: Callable[[int], str]) -> None:
    with ReadyWatch(cluster) as watch:
        result = deploy(staging, cluster, digest(2))
    assert result.summary.result == "succeeded"
    assert (result.summary.resource_changes or {}).get("update", 0) >= 1
    assert cluster.pods_by_image(NAMESPACE, APP) == {digest(2): [True] * REPLICAS}
    assert watch.samples and min(watch.samples) >= REPLICAS, f"available replicas dipped: {watch.samples}"


def test_a_rollout_that_never_turns_ready_fails_and_the_previous_replicaset_keeps_serving(
    staging: EngineStack, cluster: Cluster, digest: Callable[[int], str]
) -> None:
    with ReadyWatch(cluster) as watch, pytest.raises(auto.CommandError) as failed:
        deploy(staging, cluster, digest(3), never_ready=True)
    # The provider's own await verdict, not some other failure of the update.
    assert f"'{APP}' timed out waiting to be Ready" in str(failed.value)
    assert min(watch.samples) >= REPLICAS, f"available replicas dipped: {watch.samples}"

    # The new ReplicaSet's surge pod runs but is not Ready; the previous one still serves every replica.
    pods = cluster.pods_by_image(NAMESPACE, APP)
    assert pods[digest(2)] == [True] * REPLICAS
    assert pods[digest(3)] == [False]
    serving = {
        p["status"]["podIP"]
        for p in cluster.get("pods", "-n", NAMESPACE, "-l", f"app.kubernetes.io/name={APP}")["items"]
        if p["spec"]["containers"][0]["image"] == digest(2)
    }
    assert ready_endpoints(cluster) == serving, "the Service routes to other pods than the previous ReplicaSet's"


def test_destroy_removes_everything(staging: EngineStack, cluster: Cluster) -> None:
    declared = declared_kubernetes_objects(staging)
    result = staging.stack.destroy(on_output=print)
    assert result.summary.result == "succeeded"
    assert declared_kubernetes_objects(staging) == set()
    for kind, namespace, name in declared:
        where = ["-n", namespace] if namespace else []
        left = cluster.kubectl("get", kind, name, *where, check=False)
        assert left.returncode != 0 and "NotFound" in left.stderr, f"{kind} {name} survived the destroy"
