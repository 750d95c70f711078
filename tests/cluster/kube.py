"""The local Kubernetes cluster of cluster/up.sh, seen from tests: start and stop it, and a kubectl bound to it."""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, TypeVar

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
UP = ROOT / "cluster" / "up.sh"
DOWN = ROOT / "cluster" / "down.sh"
# A cold start builds the control plane from source first: minutes on two shared cores.
UP_TIMEOUT_S = 3600
T = TypeVar("T")


@dataclass(frozen=True)
class Cluster:
    kubeconfig: Path

    @property
    def home(self) -> Path:
        return self.kubeconfig.parent

    @property
    def kubectl_bin(self) -> Path:
        return self.home / "bin" / "kubectl"

    def kubectl(self, *args: str, check: bool = True, timeout: float = 120, **kw: Any) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(self.kubectl_bin), "--kubeconfig", str(self.kubeconfig), *args],
            capture_output=True, text=True, timeout=timeout, **kw,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
        return proc

    @property
    def server(self) -> str:
        config = yaml.safe_load(self.kubeconfig.read_text())
        return config["clusters"][0]["cluster"]["server"]

    def kubectl_with_token(self, token: str, *args: str) -> subprocess.CompletedProcess[str]:
        """kubectl as whoever the bearer token names: the admin kubeconfig's server and CA, none of its credentials."""
        return subprocess.run(
            [str(self.kubectl_bin), "--kubeconfig", "/dev/null", "--server", self.server,
             "--certificate-authority", str(self.home / "state" / "pki" / "ca.crt"), "--token", token, *args],
            capture_output=True, text=True, timeout=60,
        )

    def get(self, *args: str) -> dict[str, Any]:
        return json.loads(self.kubectl("get", *args, "-o", "json").stdout)

    def pods_by_image(self, namespace: str, app: str) -> dict[str, list[bool]]:
        """Image -> readiness of each live pod (not being deleted) labelled app.kubernetes.io/name=`app`."""
        images: dict[str, list[bool]] = {}
        for pod in self.get("pods", "-n", namespace, "-l", f"app.kubernetes.io/name={app}")["items"]:
            if pod["metadata"].get("deletionTimestamp"):
                continue
            ready = any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", []))
            images.setdefault(pod["spec"]["containers"][0]["image"], []).append(ready)
        return images

    def pod_states(self, namespace: str, app: str) -> str:
        """One line per pod labelled app.kubernetes.io/name=`app`: node, phase, readiness, restarts and why the
        last container exited, for failure messages that say what happened to a pod that is not Ready."""
        lines = []
        for pod in self.get("pods", "-n", namespace, "-l", f"app.kubernetes.io/name={app}")["items"]:
            status = pod["status"]
            ready = next((c for c in status.get("conditions", []) if c["type"] == "Ready"), {})
            containers = status.get("containerStatuses") or [{}]
            last = containers[0].get("lastState", {}).get("terminated", {})
            lines.append(
                f"{pod['metadata']['name']} on {pod['spec'].get('nodeName')}: {status.get('phase')}, "
                f"ready={ready.get('status')} ({ready.get('reason', '')} {ready.get('lastTransitionTime', '')}), "
                f"restarts={containers[0].get('restartCount')}, last exit={last.get('reason')} {last.get('exitCode')} "
                f"at {last.get('finishedAt')}, deleting={bool(pod['metadata'].get('deletionTimestamp'))}")
        events = self.kubectl("get", "events", "-n", namespace, "--field-selector", "type=Warning",
                              "-o", "custom-columns=AT:.lastTimestamp,OBJECT:.involvedObject.name,MESSAGE:.message",
                              check=False).stdout
        return "\n".join(lines) + "\nwarning events:\n" + events

    def apply(self, manifest: str, namespace: str | None = None) -> None:
        ns = ["--namespace", namespace] if namespace else []
        self.kubectl("apply", *ns, "-f", "-", input=manifest)


def eventually(check: Callable[[], T], what: str, timeout: float = 30) -> T:
    """Polls `check` until it returns something truthy (and returns that), for what controllers do shortly after."""
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f}s: {what}")
        time.sleep(0.5)
    return result


def run_script(script: Path, timeout: float) -> tuple[subprocess.CompletedProcess[str], float]:
    start = time.monotonic()
    proc = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    return proc, time.monotonic() - start


def bring_up() -> tuple[Cluster, float]:
    """Runs cluster/up.sh; fails the session loudly, with the script's own reason, if any part can't be built or started."""
    proc, seconds = run_script(UP, UP_TIMEOUT_S)
    if proc.returncode != 0:
        pytest.fail(f"cluster/up.sh failed ({proc.returncode}) after {seconds:.0f}s:\n{proc.stderr[-4000:]}", pytrace=False)
    return Cluster(kubeconfig=Path(proc.stdout.strip().splitlines()[-1])), seconds


def cluster_home() -> Path:
    cache = Path(os.environ.get("MODELSHIP_CACHE", Path.home() / ".cache" / "modelship"))
    return cache / "cluster"


def cluster_running() -> bool:
    """Whether cluster/up.sh's API server is up (a developer's `make cluster`, or an earlier test's)."""
    return (cluster_home() / "state" / "run" / "kube-apiserver.pid").exists()


# The real nodes cluster/up.sh starts (cluster/lib.sh NODES).
NODES = ("node-1", "node-2")


def web_deployment(name: str, image: str, replicas: int, ready_path: str = "/") -> str:
    """Pods spread over the nodes (at most one more on either), each answering its pod name on :8080."""
    return f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  strategy: {{type: RollingUpdate, rollingUpdate: {{maxUnavailable: 0, maxSurge: 1}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      terminationGracePeriodSeconds: 2
      topologySpreadConstraints:
      - {{maxSkew: 1, topologyKey: kubernetes.io/hostname, whenUnsatisfiable: DoNotSchedule,
          labelSelector: {{matchLabels: {{app: {name}}}}}}}
      containers:
      - name: web
        image: {image}
        ports: [{{containerPort: 8080}}]
        resources: {{requests: {{cpu: 10m, memory: 16Mi}}}}
        readinessProbe:
          httpGet: {{path: "{ready_path}", port: 8080}}
          periodSeconds: 1
"""



# busybox (Debian's static build) is the whole image: a shell, httpd, nslookup and wget for the tests' pods.
BUSYBOX = Path("/bin/busybox")
WEB_DOCKERFILE = """FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN mkdir -p /www /tmp
ENTRYPOINT ["/bin/sh", "-c", "hostname > /www/index.html && exec httpd -f -p 8080 -h /www"]
"""


def web_image(server: str, workdir: Path) -> str:
    """Builds the web image, pushes it to the registry `server` and returns it pinned by digest."""
    if not BUSYBOX.exists():
        pytest.fail(f"{BUSYBOX} is missing: install Debian's busybox-static (cluster/build.sh does)", pytrace=False)
    (workdir / "busybox").write_bytes(BUSYBOX.read_bytes())
    (workdir / "busybox").chmod(0o755)
    (workdir / "Dockerfile").write_text(WEB_DOCKERFILE)
    tag = f"{server}/modelship-test/web:test"

    def docker(*args: str) -> str:
        done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            pytest.fail(f"docker {' '.join(args[:3])} failed ({done.returncode}):\n{done.stderr[-2000:]}", pytrace=False)
        return done.stdout.strip()

    docker("build", "-q", "--network", "none", "-t", tag, str(workdir))
    docker("push", "-q", tag)
    digests = json.loads(docker("image", "inspect", "-f", "{{json .RepoDigests}}", tag))
    docker("rmi", tag)
    (digest,) = [d.split("@", 1)[1] for d in digests if d.startswith(f"{server}/modelship-test/web@")]
    return f"{tag}@{digest}"
