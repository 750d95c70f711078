"""What the cluster's serving tests need: real server images of real models (the load is tests/load.py).

`server_images` trains small digits models with model/, builds each into app/Dockerfile's image the way
infra/image.py does (hermetic build, the gate's labels), pushes it to a registry the nodes pull from and pins
it by digest, as a promotion would.
"""
from __future__ import annotations

import http.client
import json
import subprocess
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.cluster.kube import ROOT

BASE_IMAGE = "modelship/python-base:3.11"
REPOSITORY = "modelship-k8s-test/server"
GATE = {"accuracy": 0.5, "f1_macro": 0.5}


@dataclass(frozen=True)
class ServerImage:
    ref: str  # <registry>/<repository>:<tag>@sha256:...
    model_id: str
    metrics: dict[str, float]


def _docker(*args: str) -> str:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        pytest.fail(f"docker {' '.join(args[:3])} ... failed ({done.returncode}):\n{done.stderr[-3000:]}", pytrace=False)
    return done.stdout.strip()


def server_image(registry: str, epochs: int, store: Path, build_root: Path) -> ServerImage:
    """The digits MLP trained for `epochs` (model/), built, gated, pushed to `registry` and pinned by digest."""
    from infra.image import app_hash, build_context, gate_build_args, image_tag
    from model import Store, trained_entry
    from model.config import load
    from model.gate import evaluate

    entry = Path(trained_entry(load(None, {"epochs": epochs, "search": [], "export": {"int8": False}}).train, Store(store)))
    report = json.loads((entry / "report.json").read_text())
    model_id = report["model_id"]
    measured = report["metrics"][report["serving_format"]]
    metrics = {name: measured[name] for name in GATE}
    gate = evaluate(model_id, metrics, GATE)
    assert gate.passed, f"the {epochs}-epoch test model fails the test stack's gate: {gate.summary}"
    tag = image_tag(model_id, app_hash(ROOT / "app"))
    context = build_context(tag, entry, ROOT / "app", build_root)
    name = f"{registry}/{REPOSITORY}:{tag}"
    build_args = {"BASE_IMAGE": BASE_IMAGE, "IMAGE_VERSION": tag, **gate_build_args(model_id, gate.to_labels())}
    _docker("build", "--network", "none", "-q", "-t", name, *[f"--build-arg={k}={v}" for k, v in build_args.items()],
            *[f"--label={k}={v}" for k, v in gate.to_labels().items()], str(context))
    _docker("push", "-q", name)
    (digest,) = [d.split("@", 1)[1] for d in json.loads(_docker("image", "inspect", "-f", "{{json .RepoDigests}}", name))
                 if d.startswith(f"{registry}/{REPOSITORY}@")]
    # By id: the pushed image keeps a repo@digest name once its tag is gone. The registry holds it from here on.
    _docker("rmi", _docker("image", "inspect", "-f", "{{.Id}}", name))
    return ServerImage(f"{name}@{digest}", model_id, metrics)


def metrics_text(endpoint: str) -> str:
    url = urllib.parse.urlsplit(endpoint)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    try:
        connection.request("GET", "/metrics", headers={"Connection": "close"})
        return connection.getresponse().read().decode()
    finally:
        connection.close()
