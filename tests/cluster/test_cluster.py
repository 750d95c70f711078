"""The local cluster behaves as Kubernetes: healthy API, a Ready node, rollouts, RBAC, teardown and warm restart."""

from __future__ import annotations

import json
import re
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

from tests.cluster.kube import DOWN, ROOT, UP, Cluster, bring_up, run_script

KUBERNETES_VERSION = re.search(
    r"^KUBERNETES_VERSION=(\S+)", (ROOT / "cluster" / "versions.env").read_text(), re.M
).group(1)  # type: ignore[union-attr]
NODE = "kwok-node-0"
WARM_START_BUDGET_S = 60


def deployment(name: str, image: str, replicas: int = 2, annotations: dict[str, str] | None = None) -> str:
    return f"""
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: {name}}}
  strategy:
    type: RollingUpdate
    rollingUpdate: {{maxUnavailable: 0, maxSurge: 1}}
  template:
    metadata:
      labels: {{app: {name}}}
      annotations: {json.dumps(annotations or {})}
    spec:
      containers:
      - name: server
        image: {image}
        ports: [{{containerPort: 8080}}]
        readinessProbe:
          httpGet: {{path: /v2/health/ready, port: 8080}}
          periodSeconds: 2
"""


def ready_pods(cluster: Cluster, namespace: str, selector: str) -> list[dict]:
    pods = cluster.get("pods", "-n", namespace, "-l", selector)["items"]
    return [
        p for p in pods
        if any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))
    ]


def alive(pid: str) -> bool:
    """A process that has exited but not yet been reaped by its parent (a zombie) counts as stopped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_api_is_ready_and_reports_the_built_version(cluster: Cluster) -> None:
    readyz = cluster.kubectl("get", "--raw", "/readyz?verbose").stdout
    assert "readyz check passed" in readyz
    assert "[+]etcd ok" in readyz
    server = json.loads(cluster.kubectl("version", "-o", "json").stdout)["serverVersion"]
    assert server["gitVersion"] == KUBERNETES_VERSION


def test_every_component_listens_on_loopback_only(cluster: Cluster) -> None:
    run = cluster.home / "state" / "run"
    pids = {p.stem: p.read_text().strip() for p in run.glob("*.pid")}
    assert set(pids) == {"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"}
    listening = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True, check=True).stdout
    for name, pid in pids.items():
        addrs = [line.split()[3] for line in listening.splitlines() if f"pid={pid}," in line]
        assert addrs, f"{name} (pid {pid}) listens on no TCP port"
        assert all(a.startswith("127.0.0.1:") for a in addrs), f"{name} listens beyond loopback: {addrs}"


def test_the_kwok_node_is_ready(cluster: Cluster) -> None:
    node = cluster.get("node", NODE)
    ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True"
    # KWOK keeps the node alive through its Lease, as a kubelet would.
    lease = cluster.get("lease", NODE, "-n", "kube-node-lease")
    assert lease["metadata"]["ownerReferences"][0]["name"] == NODE
    renewed = datetime.fromisoformat(lease["spec"]["renewTime"].replace("Z", "+00:00"))
    assert datetime.now(timezone.utc) - renewed < timedelta(seconds=lease["spec"]["leaseDurationSeconds"])


def test_a_deployment_with_a_readiness_probe_rolls_out_on_the_node(cluster: Cluster, namespace: str) -> None:
    cluster.apply(deployment("web", "registry.invalid/web:1", replicas=3), namespace)
    cluster.kubectl("rollout", "status", "deployment/web", "-n", namespace, "--timeout=60s")
    pods = ready_pods(cluster, namespace, "app=web")
    assert len(pods) == 3
    assert {p["spec"]["nodeName"] for p in pods} == {NODE}
    assert all(p["status"].get("podIP") for p in pods)
    # The endpoints controller sees the Ready pods, as a Service would route to them.
    cluster.apply(
        "apiVersion: v1\nkind: Service\nmetadata: {name: web}\n"
        "spec: {selector: {app: web}, ports: [{port: 80, targetPort: 8080}]}\n",
        namespace,
    )
    cluster.kubectl("wait", "--for=jsonpath={.endpoints[2].conditions.ready}=true", "endpointslice",
                    "-l", "kubernetes.io/service-name=web", "-n", namespace, "--timeout=30s")


def test_a_rollout_whose_pods_never_turn_ready_stalls_and_the_old_pods_keep_serving(
    cluster: Cluster, namespace: str
) -> None:
    cluster.apply(deployment("web", "registry.invalid/web:1"), namespace)
    cluster.kubectl("rollout", "status", "deployment/web", "-n", namespace, "--timeout=60s")
    old = {p["metadata"]["name"] for p in ready_pods(cluster, namespace, "app=web")}

    cluster.apply(deployment("web", "registry.invalid/web:2", annotations={"modelship.ai/kwok-readiness": "never"}),
                  namespace)
    stalled = cluster.kubectl("rollout", "status", "deployment/web", "-n", namespace, "--timeout=15s", check=False)
    assert stalled.returncode != 0, "a rollout whose pods never turn Ready completed"

    pods = cluster.get("pods", "-n", namespace, "-l", "app=web")["items"]
    new = [p for p in pods if p["metadata"]["name"] not in old]
    assert len(new) == 1, "maxSurge 1 / maxUnavailable 0 should start exactly one new pod"
    assert new[0]["status"]["phase"] == "Running"
    assert {p["metadata"]["name"] for p in ready_pods(cluster, namespace, "app=web")} == old


def test_rbac_denies_a_service_account_until_it_is_granted(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl("create", "serviceaccount", "nobody", "-n", namespace)
    token = cluster.kubectl("create", "token", "nobody", "-n", namespace, "--duration=10m").stdout.strip()

    def as_nobody(*args: str) -> subprocess.CompletedProcess[str]:
        return cluster.kubectl_with_token(token, *args)

    whoami = as_nobody("auth", "whoami", "-o", "jsonpath={.status.userInfo.username}")
    assert whoami.stdout == f"system:serviceaccount:{namespace}:nobody", whoami.stderr
    denied = as_nobody("get", "pods", "-n", namespace)
    assert denied.returncode != 0 and "forbidden" in denied.stderr.lower(), denied.stderr

    cluster.kubectl("create", "role", "pod-reader", "--verb=get,list", "--resource=pods", "-n", namespace)
    cluster.kubectl("create", "rolebinding", "nobody-reads", "--role=pod-reader",
                    f"--serviceaccount={namespace}:nobody", "-n", namespace)
    allowed = as_nobody("get", "pods", "-n", namespace)
    assert allowed.returncode == 0, allowed.stderr
    still_denied = as_nobody("get", "secrets", "-n", namespace)
    assert still_denied.returncode != 0 and "forbidden" in still_denied.stderr.lower()


def test_down_stops_everything_and_a_warm_up_comes_back_within_budget(cluster: Cluster) -> None:
    state = cluster.home / "state"
    pids = [p.read_text().strip() for p in (state / "run").glob("*.pid")]
    proc, _ = run_script(DOWN, 120)
    assert proc.returncode == 0, proc.stderr
    assert not state.exists() and not cluster.kubeconfig.exists()
    assert not [pid for pid in pids if alive(pid)], "down.sh left processes running"

    again, seconds = bring_up()
    assert again.kubeconfig == cluster.kubeconfig
    assert seconds <= WARM_START_BUDGET_S, f"warm start took {seconds:.0f}s (budget {WARM_START_BUDGET_S}s)"
    assert "readyz check passed" in cluster.kubectl("get", "--raw", "/readyz?verbose").stdout

    # up.sh is idempotent: a second run on a running cluster starts nothing and succeeds.
    proc, seconds = run_script(UP, 120)
    assert proc.returncode == 0, proc.stderr
    assert "starting" not in proc.stderr
