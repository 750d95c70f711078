"""The dev stack through the real engine: preview, up, the policy pack, idempotence, a failing gate (fail and
keep), a model change, destroy. One stack, shared by the tests in file order.

Needs the toolchain (issue "toolchain"): the pulumi CLI, the docker-build and docker plugins, and a Docker
engine. A missing part fails the module loudly, naming it; nothing is skipped. The stack has its
own name, host ports and registry, so a `make up` dev stack on this machine is left alone.
"""
from __future__ import annotations

import subprocess
import time

import docker
import httpx
import pytest
import yaml
from pulumi import automation as auto

from tests.infra.engine import ROOT, EngineStack, engine_stack, made_by, missing_toolchain, remove_registry_images

STACK = "enginetest"
HOST_PORT, REGISTRY_PORT, PROMETHEUS_PORT = 18080, 15000, 19090
# A quick model: few epochs and no search (a failing gate would otherwise train every search step).
MODEL = {"epochs": 3, "search": []}


@pytest.fixture(scope="module")
def dev(tmp_path_factory) -> EngineStack:
    missing = missing_toolchain()
    if missing:
        pytest.fail("real-engine tests need: " + "; ".join(missing), pytrace=False)
    # Images are kept in the Engine's store (infra/container.py): an earlier run's would be counted as this one's.
    remove_registry_images(docker.from_env(), REGISTRY_PORT)
    es = engine_stack(tmp_path_factory.mktemp("engine"), STACK)
    es.write_config(config())
    yield es
    es.stack.destroy(on_output=print)
    es.stack.workspace.remove_stack(STACK)
    remove_registry_images(docker.from_env(), REGISTRY_PORT)


@pytest.fixture(scope="module")
def client() -> docker.DockerClient:
    return docker.from_env()


def config(model: dict = MODEL, **gate) -> dict:
    return {
        "target": "docker",
        "model": {"overrides": model},
        "gate": gate or {"thresholds": {"accuracy": 0.8}},
        "registry": {"kind": "local", "port": REGISTRY_PORT},
        "workload": {"hostPort": HOST_PORT},
        "monitoring": {"prometheusPort": PROMETHEUS_PORT},
    }


def answer(outputs: dict) -> httpx.Response:
    endpoint = outputs["endpoint"].value
    body = {"inputs": [{"name": "features", "shape": [1, 64], "datatype": "FP32", "data": [0.0] * 64}]}
    return httpx.post(f"{endpoint}/v2/models/model/infer", json=body, timeout=10)


def serving(client: docker.DockerClient):
    """The model server container (the one carrying a model id)."""
    (container,) = [c for c in client.containers.list(filters={"label": f"ai.modelship.stack=modelship/{STACK}"})
                    if "ai.modelship.model_id" in c.labels]
    return container


def proxy(client: docker.DockerClient):
    (container,) = [c for c in client.containers.list(filters={"label": f"ai.modelship.stack=modelship/{STACK}"})
                    if c.name.startswith("server-proxy-")]
    return container


def state(dev: EngineStack) -> dict[str, dict]:
    """Every resource in the stack's state by URN: the engine may write an unchanged state in another order."""
    return {r["urn"]: r for r in dev.stack.export_stack().deployment["resources"]}


def short(urn: str) -> str:
    """`<type>::<name>` of a URN."""
    qualified_type, name = urn.split("::")[2:]
    return f"{qualified_type.rsplit('$', 1)[-1]}::{name}"


def test_preview_up_and_the_endpoint_answers(dev, client):
    steps, _ = dev.changes()
    assert any("docker-build:index:Image" in urn for urn in steps) and all(op == "create" for op in steps.values())
    result = dev.stack.up(on_output=print)
    out = result.outputs
    assert out["imageRef"].value.split("@")[1].startswith("sha256:")
    response = answer(out)
    assert response.status_code == 200, response.text
    probabilities = response.json()["outputs"][0]["data"]
    assert len(probabilities) == 10 and abs(sum(probabilities) - 1) < 1e-3
    assert out["gate"].value["passed"] is True
    # The serving container as the Engine runs it: the spec of infra/container.py, healthy once `up` returns.
    attrs = serving(client).attrs
    host = attrs["HostConfig"]
    assert attrs["Config"]["User"] == "10001:10001" and host["ReadonlyRootfs"] is True
    assert host["CapDrop"] == ["ALL"] and host["Memory"] == 512 * 2**20
    # The server publishes nothing: the reverse proxy owns the host port (infra/proxy.py).
    assert not host["PortBindings"]
    assert proxy(client).attrs["HostConfig"]["PortBindings"] == {"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(HOST_PORT)}]}
    assert attrs["Config"]["Labels"]["ai.modelship.model_id"] == out["modelId"].value
    # By id: the image the stack pulled by its digest reference.
    assert attrs["Image"] == client.images.get(out["imageRef"].value).id
    # Prometheus answers on its port and scrapes the server (found by its network alias) and the proxy.
    assert out["prometheusUrl"].value == f"http://127.0.0.1:{PROMETHEUS_PORT}"
    targets = httpx.get(f"{out['prometheusUrl'].value}/api/v1/targets", timeout=10).json()["data"]["activeTargets"]
    address = next(iter(serving(client).attrs["NetworkSettings"]["Networks"].values()))["IPAddress"]
    assert {(t["labels"]["job"], t["labels"]["instance"]) for t in targets} >= {("modelship", f"{address}:8080"), ("modelship-proxy", "proxy:8405")}
    assert len(made_by(client, STACK, REGISTRY_PORT)["containers"]) == 5


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


def test_failing_gate_fails_the_up_and_leaves_stack_and_container_unchanged(dev, client):
    before = state(dev)
    running = serving(client).id
    dev.write_config(config(thresholds={"accuracy": 0.9999}))
    try:
        with pytest.raises(auto.CommandError, match="failed the gate"):
            dev.stack.up()
    finally:
        dev.write_config(config())
    assert state(dev) == before
    assert serving(client).id == running
    assert answer(dev.stack.outputs()).status_code == 200


def test_failing_gate_with_keep_stays_on_the_last_passing_model(dev):
    dev.write_config(config(thresholds={"accuracy": 0.9999}, onFail="keep"))
    lines: list[str] = []
    try:
        steps, _ = dev.changes(on_output=lines.append)
    finally:
        dev.write_config(config())
    assert steps == {}
    assert "keeping the last passing model" in "".join(lines)


def test_a_new_container_that_never_gets_healthy_leaves_the_old_one_serving(dev, client):
    # A new model's container starts beside the old one (behind the proxy); 8 MiB is too little to start.
    running = serving(client).id
    endpoint = dev.stack.outputs()["endpoint"].value
    cfg = config(model={**MODEL, "epochs": 4})
    cfg["workload"] = {"hostPort": HOST_PORT, "memory": "8Mi", "readyTimeoutSeconds": 30}
    dev.write_config(cfg)
    try:
        with pytest.raises(auto.CommandError, match="did not come up") as err:
            dev.stack.up()
    finally:
        dev.write_config(config())
    # The provider failed the create (it could not start, or its wait for health ran out); the error hook named
    # the container and added its last log lines.
    assert "log lines" in str(err.value)
    # The old container still serves, on the endpoint the stack's outputs still name.
    assert client.containers.get(running).status == "running"
    assert dev.stack.outputs()["endpoint"].value == endpoint and answer(dev.stack.outputs()).status_code == 200
    # The next up (config restored) replaces the failed container and converges.
    dev.stack.up()
    assert dev.changes()[0] == {}
    assert answer(dev.stack.outputs()).status_code == 200


def test_model_change_replaces_exactly_image_and_workload(dev, client):
    model_id = dev.stack.outputs()["modelId"].value
    dev.write_config(config(model={**MODEL, "epochs": 4}))
    steps, _ = dev.changes()
    assert sorted(short(urn) for urn in steps) == [
        "docker-build:index:Image::image",
        # Its alert rules name the model id Prometheus expects.
        "docker:index/container:Container::monitoring-prometheus",
        "docker:index/container:Container::server-0",
        "docker:index/remoteImage:RemoteImage::server-image",
    ], steps
    started = time.monotonic()
    out = dev.stack.up().outputs
    assert out["modelId"].value != model_id
    assert answer(out).status_code == 200
    assert serving(client).labels["ai.modelship.model_id"] == out["modelId"].value
    made = made_by(client, STACK, REGISTRY_PORT)
    # The replaced container is gone, not left beside the new one. (The pulled image's reference goes with its
    # RemoteImage; the tag the build put on the old image stays in the Engine's store: pulumi-docker removes
    # only the reference it pulled.)
    assert len(made["containers"]) == 5 and out["imageRef"].value.split("@")[0] in made["images"], made
    print(f"model change: up to answering in {time.monotonic() - started:.1f}s")


def test_promotion_pins_the_running_digest_and_refuses_a_model_below_the_target_gate(dev, monkeypatch):
    """`python -m infra.promote` against the live stack: build once, deploy many."""
    from infra.promote import PromotionRefused, promote

    for key, value in dev.env.items():  # promote reads the source's outputs through the CLI, on dev's backend
        monkeypatch.setenv(key, value)

    source = dev.stack.outputs()
    target = dev.workdir / "Pulumi.promotetarget.yaml"
    registry = {"kind": "external", "server": source["imageRef"].value.split("/", 1)[0], "username": "ci"}
    strict = {"config": {"modelship:gate": {"thresholds": {"accuracy": 0.9999}},
                         "modelship:registry": registry, "modelship:promotion": {"requireDigest": True}}}
    target.write_text(yaml.safe_dump(strict))
    with pytest.raises(PromotionRefused, match="fails the gate of stack 'promotetarget'") as refused:
        promote(STACK, "promotetarget", root=dev.workdir)
    assert "| accuracy |" in str(refused.value)
    assert yaml.safe_load(target.read_text()) == strict, "a refused promotion must leave the stack file alone"

    lenient = {"config": {**strict["config"], "modelship:gate": {"thresholds": {"accuracy": 0.8}}}}
    target.write_text(yaml.safe_dump(lenient))
    pinned = promote(STACK, "promotetarget", root=dev.workdir)
    # Same registry: the very digest the source serves, not a rebuild or a re-tag.
    assert pinned["image"] == source["imageRef"].value and pinned["modelId"] == source["modelId"].value
    written = yaml.safe_load(target.read_text())["config"]["modelship:promotion"]
    assert written["image"] == pinned["image"] and written["metrics"]["accuracy"] >= 0.8


def test_destroy_leaves_nothing_behind(dev, client):
    assert made_by(client, STACK, REGISTRY_PORT)["containers"], "the stack should be up before this test"
    dev.stack.destroy()
    left = made_by(client, STACK, REGISTRY_PORT)
    # Built images keep their build's tags in the Engine's store (see the model change above).
    assert left["containers"] == [] and left["networks"] == [], left
