"""The cluster's real nodes: kubelets that run containers, a pod network, Services, DNS, metrics, drain and
restarts (docs/cluster.md). Every pod runs the web image (busybox httpd answering its pod's name), pulled by
digest from a registry on loopback; nothing here is simulated."""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.request
from datetime import datetime

from tests.cluster.kube import NODES, ROOT, Cluster, eventually, web_deployment

KUBERNETES_VERSION = re.search(
    r"^KUBERNETES_VERSION=(\S+)", (ROOT / "cluster" / "versions.env").read_text(), re.M
).group(1)  # type: ignore[union-attr]


def service(name: str, node_port: bool = False) -> str:
    kind = "NodePort" if node_port else "ClusterIP"
    return (f"apiVersion: v1\nkind: Service\nmetadata: {{name: {name}}}\n"
            f"spec: {{type: {kind}, selector: {{app: {name}}}, ports: [{{port: 80, targetPort: 8080}}]}}\n")


def pods(cluster: Cluster, namespace: str, app: str) -> list[dict]:
    return [p for p in cluster.get("pods", "-n", namespace, "-l", f"app={app}")["items"]
            if not p["metadata"].get("deletionTimestamp")]


def is_ready(pod: dict) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", []))


def rollout(cluster: Cluster, namespace: str, name: str, timeout: str = "120s") -> None:
    cluster.kubectl("rollout", "status", f"deployment/{name}", "-n", namespace, f"--timeout={timeout}", timeout=200)


def get_text(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode().strip()


def answers(url: str, count: int) -> set[str]:
    """The pod names that answered `count` requests to `url`, each on a new connection.

    A request that fails adds its error instead, so that a check polling for a set of names keeps polling while
    kube-proxy programs a new Service (it refuses connections until then) and an assertion shows what went wrong.
    """
    names = set()
    for _ in range(count):
        try:
            names.add(get_text(url))
        except OSError as error:
            names.add(f"failed: {error}")
    return names


def test_both_nodes_are_ready_with_real_kubelets(cluster: Cluster) -> None:
    nodes = {n["metadata"]["name"]: n for n in cluster.get("nodes")["items"]}
    assert set(NODES) <= set(nodes), f"nodes: {sorted(nodes)}"
    # A simulated node (MODELSHIP_KWOK=1) never takes a pod that does not ask for it.
    if "kwok-node-0" in nodes:
        taints = nodes["kwok-node-0"]["spec"].get("taints", [])
        assert {"key": "kwok.x-k8s.io/node", "value": "fake", "effect": "NoSchedule"} in taints, taints
    cidrs = set()
    for name in NODES:
        node = nodes[name]
        ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
        assert ready["status"] == "True", ready
        info = node["status"]["nodeInfo"]
        assert info["kubeletVersion"] == KUBERNETES_VERSION
        assert info["containerRuntimeVersion"].startswith("containerd://"), info
        assert not node["metadata"].get("annotations", {}).get("kwok.x-k8s.io/node")
        cidrs.add(node["spec"]["podCIDR"])
        # The kubelet's API answers (through the API server's node proxy, with its kubelet client certificate).
        healthz = cluster.kubectl("get", "--raw", f"/api/v1/nodes/{name}/proxy/healthz").stdout
        assert healthz == "ok"
    assert len(cidrs) == len(NODES), f"the nodes share a pod CIDR: {cidrs}"


def test_a_pod_on_each_node_runs_a_local_image_and_answers(cluster: Cluster, namespace: str, web: str) -> None:
    start = time.monotonic()
    cluster.apply(web_deployment("web", web, replicas=2), namespace)
    rollout(cluster, namespace, "web")
    print(f"\n2 pods Ready from apply in {time.monotonic() - start:.1f}s")
    running = pods(cluster, namespace, "web")
    assert {p["spec"]["nodeName"] for p in running} == set(NODES)
    for pod in running:
        assert pod["status"]["containerStatuses"][0]["imageID"].endswith(web.split("@", 1)[1])
        started = datetime.fromisoformat(pod["metadata"]["creationTimestamp"].replace("Z", "+00:00"))
        ready_at = next(c["lastTransitionTime"] for c in pod["status"]["conditions"] if c["type"] == "Ready")
        print(f"{pod['spec']['nodeName']}: created to Ready in "
              f"{(datetime.fromisoformat(ready_at.replace('Z', '+00:00')) - started).total_seconds():.0f}s")
        # Its own answer, on its pod IP, from the host.
        assert get_text(f"http://{pod['status']['podIP']}:8080/") == pod["metadata"]["name"]
    # The logs come from the kubelet, through the API server; so does a port-forward.
    name = running[0]["metadata"]["name"]
    cluster.kubectl("logs", "-n", namespace, name)
    forward = subprocess.Popen(
        [str(cluster.kubectl_bin), "--kubeconfig", str(cluster.kubeconfig), "port-forward", "-n", namespace,
         f"pod/{name}", ":8080"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert forward.stdout is not None
        line = forward.stdout.readline()  # "Forwarding from 127.0.0.1:<port> -> 8080"
        port = re.search(r"127\.0\.0\.1:(\d+)", line)
        assert port, f"kubectl port-forward said {line!r}"
        assert get_text(f"http://127.0.0.1:{port.group(1)}/") == name
    finally:
        forward.terminate()
        forward.wait(10)


def test_a_service_answers_on_its_cluster_ip_and_on_a_loopback_node_port(
    cluster: Cluster, namespace: str, web: str
) -> None:
    cluster.apply(web_deployment("web", web, replicas=2), namespace)
    cluster.apply(service("web", node_port=True), namespace)
    rollout(cluster, namespace, "web")
    names = {p["metadata"]["name"] for p in pods(cluster, namespace, "web")}
    svc = cluster.get("service", "web", "-n", namespace)
    cluster_ip, node_port = svc["spec"]["clusterIP"], svc["spec"]["ports"][0]["nodePort"]
    # kube-proxy programs the rules once the endpoints are Ready; both pods, on both nodes, answer.
    eventually(lambda: answers(f"http://{cluster_ip}/", 20) == names, "the ClusterIP reaches both pods", 30)
    assert answers(f"http://127.0.0.1:{node_port}/", 20) == names


def test_coredns_resolves_a_service_name_from_a_pod(cluster: Cluster, namespace: str, web: str) -> None:
    cluster.apply(web_deployment("web", web, replicas=2), namespace)
    cluster.apply(service("web"), namespace)
    rollout(cluster, namespace, "web")
    pod = pods(cluster, namespace, "web")[0]["metadata"]["name"]
    cluster_ip = cluster.get("service", "web", "-n", namespace)["spec"]["clusterIP"]
    fqdn = f"web.{namespace}.svc.cluster.local"
    looked_up = cluster.kubectl("exec", "-n", namespace, pod, "--", "nslookup", fqdn).stdout
    assert cluster_ip in looked_up, looked_up
    # The short name through the pod's search path, then the Service, from inside the pod network.
    # (busybox's own `timeout`: its wget crashes on -T)
    body = cluster.kubectl("exec", "-n", namespace, pod, "--", "timeout", "10", "wget", "-qO-", "http://web/").stdout.strip()
    assert body.startswith("web-"), body
    missing = cluster.kubectl("exec", "-n", namespace, pod, "--", "nslookup", f"nothing.{namespace}.svc.cluster.local",
                              check=False)
    assert missing.returncode != 0


def test_the_metrics_api_reports_nodes_and_pods(cluster: Cluster, namespace: str, web: str) -> None:
    top = cluster.kubectl("top", "nodes", "--no-headers").stdout
    assert {line.split()[0] for line in top.splitlines()} >= set(NODES), top
    cluster.apply(web_deployment("web", web, replicas=2), namespace)
    rollout(cluster, namespace, "web")
    names = {p["metadata"]["name"] for p in pods(cluster, namespace, "web")}

    def pod_metrics() -> set[str]:
        raw = cluster.kubectl("get", "--raw", f"/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods", check=False)
        return {item["metadata"]["name"] for item in json.loads(raw.stdout or "{}").get("items", [])}

    # metrics-server scrapes every 15 s and needs two samples of a new pod's CPU counter.
    eventually(lambda: pod_metrics() >= names, "metrics for both pods", 75)
    assert cluster.kubectl("top", "pods", "-n", namespace, "--no-headers").stdout.count("web-") == 2


def test_a_drain_moves_a_pod_to_the_other_node(cluster: Cluster, namespace: str, web: str) -> None:
    cluster.apply(web_deployment("web", web, replicas=1), namespace)
    rollout(cluster, namespace, "web")
    (before,) = pods(cluster, namespace, "web")
    node = before["spec"]["nodeName"]
    try:
        cluster.kubectl("drain", node, "--pod-selector=app=web", "--ignore-daemonsets", "--timeout=60s", timeout=90)
        rollout(cluster, namespace, "web")
        (after,) = pods(cluster, namespace, "web")
        assert after["metadata"]["name"] != before["metadata"]["name"]
        assert after["spec"]["nodeName"] == ({*NODES} - {node}).pop()
        assert get_text(f"http://{after['status']['podIP']}:8080/") == after["metadata"]["name"]
    finally:
        cluster.kubectl("uncordon", node)


def test_a_container_killed_through_the_runtime_is_restarted_by_the_kubelet(
    cluster: Cluster, namespace: str, web: str
) -> None:
    cluster.apply(web_deployment("web", web, replicas=1), namespace)
    rollout(cluster, namespace, "web")
    (pod,) = pods(cluster, namespace, "web")
    name, node = pod["metadata"]["name"], pod["spec"]["nodeName"]
    container_id = pod["status"]["containerStatuses"][0]["containerID"].removeprefix("containerd://")
    socket = cluster.home / "state" / "nodes" / node / "containerd.sock"
    killed = subprocess.run(["ctr", "--address", str(socket), "--namespace", "k8s.io", "tasks", "kill",
                             "--signal", "SIGKILL", container_id], capture_output=True, text=True, timeout=30)
    assert killed.returncode == 0, killed.stderr

    def restarted() -> dict | None:
        now = cluster.get("pod", name, "-n", namespace)
        status = now["status"]["containerStatuses"][0]
        return now if status["restartCount"] >= 1 and is_ready(now) else None

    after = eventually(restarted, "the kubelet restarts the killed container and it turns Ready", 60)
    status = after["status"]["containerStatuses"][0]
    assert status["lastState"]["terminated"]["exitCode"] == 137  # 128 + SIGKILL
    assert status["containerID"].removeprefix("containerd://") != container_id
    assert get_text(f"http://{after['status']['podIP']}:8080/") == name
