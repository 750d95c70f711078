"""The image the program builds says what the gate decided: in its labels, and on the server's `/metrics`.

The program runs under Pulumi's mocks (the model side is real: a quick model is trained into a test store and
gated); the image is then built from exactly the context, Dockerfile, build args and labels the program gave
its `docker-build` Image, run as production runs it, and asked for `modelship_model_info`.
"""
from __future__ import annotations

import json
import re
import subprocess
import time

import httpx
import pytest

from tests.infra.harness import quick_dev_config, run_program

STACK = "e14-gate"
BUILT = "docker-build:index:Image"
HOST_PORT = 28080
INFO = re.compile(r"^modelship_model_info\{(?P<labels>.*)\} 1\.0$")
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def docker(*args: str) -> str:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"docker {' '.join(args[:3])} ... failed ({done.returncode}):\n{done.stderr[-3000:]}"
    return done.stdout.strip()


@pytest.fixture(scope="module")
def program(tmp_path_factory) -> dict:
    """The dev stack's program with a quick model (no search) in a test store: the image's build inputs and outputs."""
    cfg = quick_dev_config(tmp_path_factory.mktemp("store"), epochs=3)
    cfg["gate"] = {"thresholds": {"accuracy": 0.5, "f1_macro": 0.5}}
    cfg["registry"] = {"kind": "local", "port": 25000}
    run = run_program(STACK, cfg)
    return {"image": run.one(BUILT).inputs, "gate": run.outputs["gate"], "model_id": run.outputs["modelId"]}


@pytest.fixture(scope="module")
def built(program) -> str:
    inputs = program["image"]
    tag = f"modelship-e14/gate:{inputs['tags'][0].rsplit(':', 1)[1]}"
    args = [f"--build-arg={k}={v}" for k, v in inputs["buildArgs"].items()]
    args += [f"--label={k}={v}" for k, v in inputs["labels"].items()]
    docker("build", "--network", "none", "-q", "-t", tag, "-f", inputs["dockerfile"]["location"], *args,
           inputs["context"]["location"])
    yield tag
    subprocess.run(["docker", "rmi", tag], capture_output=True)


def model_info(image: str) -> dict[str, str]:
    container = docker("run", "-d", "--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL",
                       "-p", f"127.0.0.1:{HOST_PORT}:8080", image)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                text = httpx.get(f"http://127.0.0.1:{HOST_PORT}/metrics", timeout=5).text
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, docker("logs", container)
                time.sleep(0.5)
    finally:
        subprocess.run(["docker", "rm", "-f", container], capture_output=True)
    (line,) = [m["labels"] for m in map(INFO.match, text.splitlines()) if m]
    return dict(LABEL.findall(line))


def test_the_program_passes_the_gate_to_the_build(program):
    gate, args, labels = program["gate"], program["image"]["buildArgs"], program["image"]["labels"]
    assert gate["passed"] is True
    assert args["MODEL_ID"] == program["model_id"] and args["GATE_PASSED"] == "true"
    # Every gated metric, whatever the task, is a label of the image.
    gated = {c["metric"] for c in gate["checks"]}
    assert gated == {"accuracy", "f1_macro"} and {f"ai.modelship.gate.{m}" for m in gated} <= set(labels)


def test_the_built_image_reports_the_gates_verdict_and_figures(program, built):
    labels = json.loads(docker("image", "inspect", "-f", "{{json .Config.Labels}}", built))
    assert labels["ai.modelship.model_id"] == program["model_id"]
    assert labels["ai.modelship.gate.passed"] == "true"
    info = model_info(built)
    assert info["gate_passed"] == "true" and info["model_id"] == program["model_id"], info
    for check in program["gate"]["checks"]:
        metric = check["metric"]
        # The label, the image label and the gate's own figure agree (the label text has 4 significant digits).
        assert float(info[metric]) == pytest.approx(check["value"], abs=5e-4), (metric, info)
        assert float(labels[f"ai.modelship.gate.{metric}"]) == pytest.approx(check["value"], abs=5e-4)
