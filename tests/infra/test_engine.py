"""The dev stack through the real engine: preview, up, idempotence, a model change, a failing gate, destroy.

Needs the toolchain (issue "toolchain"): the pulumi CLI and the docker-build and docker plugins, and a
Docker engine. A missing part fails the module loudly, naming it; nothing is skipped.
"""
from __future__ import annotations

import subprocess
import time

import docker
import httpx
import pytest
from pulumi import automation as auto

from tests.infra.engine import ROOT, EngineStack, engine_stack, missing_toolchain

STACK = "enginetest"
# Ports of their own, so a `make up` dev stack on this machine is left alone.
HOST_PORT, REGISTRY_PORT = 18080, 15000


@pytest.fixture(scope="module")
def dev(tmp_path_factory) -> EngineStack:
    missing = missing_toolchain()
    if missing:
        pytest.fail("real-engine tests need: " + "; ".join(missing), pytrace=False)
    es = engine_stack(tmp_path_factory.mktemp("engine"), STACK)
    es.write_config(config())
    yield es
    es.stack.destroy(on_output=print)
    es.stack.workspace.remove_stack(STACK)


def config(**gate) -> dict:
    return {
        "target": "docker",
        "model": {"overrides": {"epochs": 3}},
        "gate": gate or {"thresholds": {"accuracy": 0.8}},
        "registry": {"kind": "local", "port": REGISTRY_PORT},
        "workload": {"hostPort": HOST_PORT},
        "monitoring": {"enabled": False},
    }


def answer(outputs: dict) -> httpx.Response:
    endpoint = outputs["endpoint"].value
    body = {"inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP32", "data": [0.0] * 64}]}
    return httpx.post(f"{endpoint}/v2/models/model/infer", json=body, timeout=10)


def ours(client: docker.DockerClient) -> dict[str, list[str]]:
    """Containers, networks and images this stack made, by name."""
    return {
        "containers": [c.name for c in client.containers.list(all=True) if c.name.startswith(("registry-", "server-"))],
        "networks": [n.name for n in client.networks.list() if n.name.startswith("server-net-")],
        "images": [t for i in client.images.list() for t in i.tags if t.startswith(f"localhost:{REGISTRY_PORT}/")],
    }


def test_preview_up_and_the_endpoint_answers(dev):
    steps, _ = dev.changes()
    assert any("docker-build:index:Image" in urn for urn in steps) and all(op == "create" for op in steps.values())
    result = dev.stack.up(on_output=print)
    out = result.outputs
    assert out["imageRef"].value.split("@")[1].startswith("sha256:")
    response = answer(out)
    assert response.status_code == 200, response.text
    assert out["gate"].value["passed"] is True


def test_policy_pack_passes_on_the_dev_preview(dev):
    # `pulumi preview --policy-pack policy`, as the PR check runs it; the pack has its own virtualenv and
    # runs through the Python language host (docs/toolchain.md: no separate analyzer binary).
    subprocess.run([str(ROOT / "policy" / "setup.sh")], check=True)
    _, result = dev.changes(policy_packs=[str(ROOT / "policy")])
    assert "mandatory" not in result.stdout.lower(), result.stdout


def test_second_up_changes_nothing(dev):
    steps, _ = dev.changes()
    assert steps == {}
    result = dev.stack.up()
    assert set(result.summary.resource_changes) == {"same"}


def test_failing_gate_fails_the_preview_and_leaves_the_stack_unchanged(dev):
    before = dev.stack.export_stack().deployment["resources"]
    dev.write_config(config(thresholds={"accuracy": 0.8, "loss": 0.0}))
    with pytest.raises(auto.CommandError, match="failed the gate"):
        dev.stack.up()
    dev.write_config(config())
    assert dev.stack.export_stack().deployment["resources"] == before


def test_failing_gate_with_keep_stays_on_the_last_passing_model(dev):
    dev.write_config(config(thresholds={"accuracy": 0.8, "loss": 0.0}, onFail="keep"))
    warnings: list[str] = []
    steps, result = dev.changes(on_output=warnings.append)
    dev.write_config(config())
    assert steps == {}
    assert "keeping the last passing model" in "".join(warnings)


def test_model_change_shows_exactly_image_and_workload_changing(dev):
    model_id = dev.stack.outputs()["modelId"].value
    cfg = config()
    cfg["model"] = {"overrides": {"epochs": 4}}
    dev.write_config(cfg)
    steps, _ = dev.changes()
    changed = sorted(urn.rsplit("::", 1)[0].rsplit("$", 1)[-1] + "::" + urn.rsplit("::", 1)[1] for urn in steps)
    assert changed == [
        "docker-build:index:Image::image",
        "docker:index/container:Container::server",
        "docker:index/remoteImage:RemoteImage::server-image",
    ], steps
    started = time.monotonic()
    out = dev.stack.up().outputs
    assert out["modelId"].value != model_id
    assert answer(out).status_code == 200
    print(f"model change: up to answering in {time.monotonic() - started:.1f}s")


def test_destroy_leaves_nothing_behind(dev):
    client = docker.from_env()
    assert ours(client)["containers"], "the stack should be up before this test"
    dev.stack.destroy()
    assert ours(client) == {"containers": [], "networks": [], "images": []}
