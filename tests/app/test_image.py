"""The serving image (app/Dockerfile), built hermetically the way infra/ builds it, run as production runs it."""
from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from app_server import ROOT, free_port

BASE_IMAGE = os.environ.get("MODELSHIP_BASE_IMAGE", "modelship/python-base:3.11")
HARDENED = ("--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL", "--security-opt", "no-new-privileges")


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=600)
    if check and result.returncode != 0:
        pytest.fail(f"docker {' '.join(args)} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result


@pytest.fixture(scope="module")
def image(entry: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    if docker("info", check=False).returncode != 0:
        pytest.fail("the Docker engine is not reachable (`docker info` failed): start it, the image tests need it")
    if docker("image", "inspect", BASE_IMAGE, check=False).returncode != 0:
        pytest.fail(f"base image {BASE_IMAGE} is missing: build the local base images (toolchain/docker.sh) "
                    "or set MODELSHIP_BASE_IMAGE to one that exists")
    from infra.image import app_hash, build_context, image_tag

    report = json.loads((entry / "report.json").read_text())
    tag = image_tag(report["model_id"], app_hash(ROOT / "app"))
    context = build_context(tag, entry, ROOT / "app", tmp_path_factory.mktemp("build"))
    name = f"modelship-test/app:{tag}"
    # Earlier builds of this test (other app/ or model hashes) would pile up; the build cache stays.
    for old in docker("image", "ls", "--format", "{{.Repository}}:{{.Tag}}", "modelship-test/app").stdout.split():
        if old != name:
            docker("rmi", old, check=False)
    docker("build", "--network", "none", "-q", "-t", name, f"--build-arg=BASE_IMAGE={BASE_IMAGE}",
           f"--build-arg=MODEL_ID={report['model_id']}", "--build-arg=GATE_PASSED=true",
           f"--build-arg=IMAGE_VERSION={tag}", str(context))
    return name


class Container:
    def __init__(self, image: str, *options: str):
        self.port = free_port()
        begun = time.perf_counter()
        self.id = docker("run", "-d", *HARDENED, "-p", f"127.0.0.1:{self.port}:8080", *options, image).stdout.strip()
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=10)
        self.start_to_ready = self._wait_ready(begun)

    def _wait_ready(self, begun: float) -> float:
        while time.perf_counter() - begun < 60:
            try:
                if self.client.get("/v2/health/ready").status_code == 200:
                    return time.perf_counter() - begun
            except httpx.TransportError:
                pass
            if docker("inspect", "-f", "{{.State.Running}}", self.id).stdout.strip() != "true":
                break
            time.sleep(0.02)
        logs = docker("logs", self.id, check=False)
        self.remove()
        pytest.fail(f"container never became ready:\n{logs.stdout}{logs.stderr}")

    def inspect(self, template: str) -> str:
        return docker("inspect", "-f", template, self.id).stdout.strip()

    def remove(self) -> None:
        self.client.close()
        docker("rm", "-f", self.id, check=False)


@pytest.fixture(scope="module")
def container(image: str):
    running = Container(image, "--health-interval=1s", "--health-start-period=1s")
    yield running
    running.remove()


def test_answers_through_its_published_port_read_only(container, digits, reference):
    tflite, _ = reference
    rows = digits[:16]
    answer = container.client.post("/v1/models/model:predict", json={"instances": rows.tolist()})
    assert answer.status_code == 200, answer.text
    np.testing.assert_array_equal(np.asarray(answer.json()["predictions"], np.float32), tflite(rows))
    v2 = container.client.post("/v2/models/model/infer", json={"inputs": [
        {"name": "features", "shape": [16, 64], "datatype": "FP32", "data": rows.ravel().tolist()}]})
    np.testing.assert_array_equal(np.asarray(v2.json()["outputs"][0]["data"], np.float32).reshape(16, 10), tflite(rows))
    assert container.inspect("{{.HostConfig.ReadonlyRootfs}}") == "true"
    print(f"container start-to-ready: {container.start_to_ready:.2f} s")


def test_runs_as_non_root(container):
    assert container.inspect("{{.Config.User}}") == "10001:10001"
    ids = docker("exec", container.id, "python3", "-c", "import os; print(os.getuid(), os.getgid())").stdout.split()
    assert ids == ["10001", "10001"]


def test_carries_no_tensorflow(container):
    probe = docker("exec", container.id, "python3", "-c", "import tensorflow", check=False)
    assert probe.returncode != 0 and "No module named 'tensorflow'" in probe.stderr


def test_labels_and_healthcheck(container, image, entry):
    labels = json.loads(docker("image", "inspect", "-f", "{{json .Config.Labels}}", image).stdout)
    model_id = json.loads((entry / "report.json").read_text())["model_id"]
    assert labels["ai.modelship.model_id"] == model_id
    assert labels["ai.modelship.gate.passed"] == "true"
    assert labels["org.opencontainers.image.version"] == image.split(":")[-1]
    assert labels["org.opencontainers.image.base.name"] == BASE_IMAGE
    deadline = time.monotonic() + 30
    while container.inspect("{{.State.Health.Status}}") != "healthy":
        assert time.monotonic() < deadline, container.inspect("{{json .State.Health}}")
        time.sleep(0.5)
    info = [line for line in container.client.get("/metrics").text.splitlines() if line.startswith("modelship_model_info{")]
    assert f'model_id="{model_id}"' in info[0] and 'gate_passed="true"' in info[0]


def test_docker_stop_is_graceful(image):
    running = Container(image)
    begun = time.monotonic()
    docker("stop", "-t", "20", running.id)
    assert time.monotonic() - begun < 10, "SIGTERM did not stop the server: docker had to kill it"
    assert running.inspect("{{.State.ExitCode}}") in ("0", "143")
    assert "Application shutdown complete" in docker("logs", running.id).stderr
    running.remove()


def test_several_workers_on_a_read_only_root(image):
    running = Container(image, "-e", "WORKERS=2")
    try:
        for _ in range(4):
            with httpx.Client(base_url=running.client.base_url) as fresh:
                assert fresh.post("/v1/models/model:predict", json={"instances": [[1.0] * 64]}).status_code == 200
        rows = [line for line in running.client.get("/metrics").text.splitlines() if line.startswith("modelship_input_rows_total")]
        assert rows == ["modelship_input_rows_total 4.0"]
    finally:
        running.remove()
