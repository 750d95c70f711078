"""The local cluster behaves as Kubernetes: healthy API, rollouts on the real nodes, RBAC, teardown and warm restart."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from tests.cluster.kube import DOWN, NODES, ROOT, UP, Cluster, bring_up, run_script, web_deployment

KUBERNETES_VERSION = re.search(
    r"^KUBERNETES_VERSION=(\S+)", (ROOT / "cluster" / "versions.env").read_text(), re.M
).group(1)  # type: ignore[union-attr]
WARM_START_BUDGET_S = 90


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


def test_every_component_listens_on_loopback_or_its_node_ip_only(cluster: Cluster) -> None:
    run = cluster.home / "state" / "run"
    pids = {p.stem: p.read_text().strip() for p in run.glob("*.pid")}
    control = {"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy"}
    nodes = {f"{kind}-{n}" for kind in ("containerd", "kubelet") for n in NODES}
    assert set(pids) - {"kwok"} == control | nodes  # kwok: only with MODELSHIP_KWOK=1
    listening = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True, check=True).stdout
    node_ips = {n: cluster.get("node", n)["status"]["addresses"][0]["address"] for n in NODES}
    for name, pid in pids.items():
        addrs = [line.split()[3] for line in listening.splitlines() if f"pid={pid}," in line]
        # A kubelet serves on its node's IP (its bridge's address); containerd streams on loopback, when asked.
        allowed = {"127.0.0.1"} | ({node_ips[name.split("-", 1)[1]]} if name.startswith("kubelet-") else set())
        if not name.startswith("containerd-"):
            assert addrs, f"{name} (pid {pid}) listens on no TCP port"
        assert all(a.rsplit(":", 1)[0] in allowed for a in addrs), f"{name} listens beyond {allowed}: {addrs}"
    assert all(ip.startswith("10.244.") for ip in node_ips.values()), node_ips


def test_a_deployment_with_a_readiness_probe_rolls_out_on_the_nodes(cluster: Cluster, namespace: str, web: str) -> None:
    cluster.apply(web_deployment("web", web, replicas=3), namespace)
    cluster.kubectl("rollout", "status", "deployment/web", "-n", namespace, "--timeout=120s", timeout=150)
    pods = ready_pods(cluster, namespace, "app=web")
    assert len(pods) == 3
    assert {p["spec"]["nodeName"] for p in pods} == set(NODES)
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
    cluster: Cluster, namespace: str, web: str
) -> None:
    cluster.apply(web_deployment("web", web, replicas=2), namespace)
    cluster.kubectl("rollout", "status", "deployment/web", "-n", namespace, "--timeout=120s", timeout=150)
    old = {p["metadata"]["name"] for p in ready_pods(cluster, namespace, "app=web")}

    # The same image, probed where it answers 404: the kubelet's real probe fails, as a broken build's would.
    cluster.apply(web_deployment("web", web, replicas=2, ready_path="/not-there"), namespace)
    stalled = cluster.kubectl("rollout", "status", "deployment/web", "-n", namespace, "--timeout=15s", check=False,
                              timeout=60)
    assert stalled.returncode != 0, "a rollout whose pods never turn Ready completed"

    pods = cluster.get("pods", "-n", namespace, "-l", "app=web")["items"]
    new = [p for p in pods if p["metadata"]["name"] not in old]
    assert len(new) == 1, "maxSurge 1 / maxUnavailable 0 should start exactly one new pod"
    assert new[0]["status"]["phase"] == "Running"
    assert new[0]["status"]["containerStatuses"][0]["started"] is True
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


def host_leftovers() -> list[str]:
    """What the nodes make on the host and down.sh must remove: bridges, cgroups, mounts, iptables chains, and
    kube-proxy's route_localnet."""
    found = []
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=True).stdout
    found += [f"bridge {b}" for b in re.findall(r"\d+: (mship-br\d+)[:@]", links)]
    found += [f"cgroup {p}" for p in Path("/sys/fs/cgroup").glob("*/modelship-node-*")]
    mounts = Path("/proc/self/mountinfo").read_text()
    found += [f"mount {line.split()[4]}" for line in mounts.splitlines() if "/cluster/state/nodes/" in line]
    for table in ("filter", "nat"):
        rules = subprocess.run(["iptables", "-w", "-t", table, "-S"], capture_output=True, text=True).stdout
        found += [f"iptables {table}: {r}" for r in rules.splitlines() if "KUBE-" in r or "10.244." in r]
    if Path("/proc/sys/net/ipv4/conf/all/route_localnet").read_text().strip() != "0":
        found.append("net.ipv4.conf.all.route_localnet is still 1")
    return found


def test_down_stops_everything_and_a_warm_up_comes_back_within_budget(cluster: Cluster) -> None:
    state = cluster.home / "state"
    pids = [p.read_text().strip() for p in (state / "run").glob("*.pid")]
    proc, _ = run_script(DOWN, 180)
    assert proc.returncode == 0, proc.stderr
    assert not state.exists() and not cluster.kubeconfig.exists()
    assert not [pid for pid in pids if alive(pid)], "down.sh left processes running"
    shims = subprocess.run(["pgrep", "-f", "containerd-shim-runc-v2 .*/cluster/state/nodes/"], capture_output=True,
                           text=True).stdout.split()
    assert not shims, f"down.sh left container shims running: {shims}"
    assert not host_leftovers(), host_leftovers()

    again, seconds = bring_up()
    print(f"\nwarm start: {seconds:.1f}s")
    assert again.kubeconfig == cluster.kubeconfig
    assert seconds <= WARM_START_BUDGET_S, f"warm start took {seconds:.0f}s (budget {WARM_START_BUDGET_S}s)"
    assert "readyz check passed" in cluster.kubectl("get", "--raw", "/readyz?verbose").stdout
    for node in NODES:
        cluster.kubectl("wait", "--for=condition=Ready", f"node/{node}", "--timeout=10s")

    # up.sh is idempotent: a second run on a running cluster starts nothing and succeeds.
    proc, seconds = run_script(UP, 120)
    assert proc.returncode == 0, proc.stderr
    assert "starting" not in proc.stderr
