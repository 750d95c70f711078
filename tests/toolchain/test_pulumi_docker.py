"""The Docker resource plugin that toolchain/pulumi.sh builds (pulumi-docker 5.2.0's) serves the PyPI SDK on the real
engine: up, a second up that changes nothing, refresh, import of a container made outside Pulumi, and destroy.

A throwaway project (docker_project/) on a temporary file backend, through the Automation API, with a base image
that `make bootstrap` builds locally (nothing is pulled). Needs the environment of toolchain/env.sh.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from pathlib import Path

import docker
import pulumi
import pulumi_docker
import pytest
from pulumi import automation as auto
from pulumi._types import (
    _py_to_pulumi_names_from_py_properties,
    input_type_py_to_pulumi_names,
    resource_py_to_pulumi_names,
)

from tests.toolchain.probe import probe_stack

ROOT = Path(__file__).resolve().parents[2]
PROJECT = Path(__file__).with_name("docker_project")
IMAGE = "modelship/python-base:3.11"
CONTAINER = "docker:index/container:Container"


@pytest.fixture
def client(docker_client):
    try:
        docker_client.images.get(IMAGE)
    except docker.errors.ImageNotFound:
        pytest.fail(f"{IMAGE} is not in the Engine's store: run `make bootstrap` (toolchain/images.sh builds it)")
    return docker_client


@pytest.fixture
def stack(tmp_path: Path):
    work = tmp_path / "project"
    shutil.copytree(PROJECT, work)
    stack = probe_stack(work, "docker-probe")
    label = uuid.uuid4().hex[:12]
    stack.set_all_config({"image": auto.ConfigValue(IMAGE), "label": auto.ConfigValue(label)})
    yield stack, label
    stack.destroy()
    stack.workspace.remove_stack("probe")


def resources(stack: auto.Stack) -> dict[str, dict]:
    """The stack's resources by URN name, from an export of its state."""
    deployment = stack.export_stack().deployment
    return {r["urn"].rsplit("::", 1)[1]: r for r in deployment["resources"] if r["type"].startswith("docker:")}


def test_lifecycle_refresh_import_and_destroy(stack, client):
    stack, label = stack
    up = stack.up()
    assert up.summary.result == "succeeded"
    assert up.summary.resource_changes == {"create": 4}  # stack, network, image, container (providers uncounted)
    container = client.containers.get(up.outputs["container"].value)
    assert container.status == "running" and container.attrs["State"]["Health"]["Status"] == "healthy"
    assert container.labels["ai.modelship.test"] == label
    assert up.outputs["network"].value in container.attrs["NetworkSettings"]["Networks"]
    assert container.image.id == client.images.get(IMAGE).id == up.outputs["image_id"].value

    assert stack.up().summary.resource_changes == {"same": 4}
    refreshed = stack.refresh()
    assert refreshed.summary.result == "succeeded"
    assert set(refreshed.summary.resource_changes) == {"same"}

    # A container made outside Pulumi comes under its management by id, with what the Engine says of it.
    outsider = client.containers.run(IMAGE, ["sleep", "100000"], detach=True, name=f"probe-import-{label}",
                                     labels={"ai.modelship.test": label})
    try:
        imported = stack.import_resources(
            resources=[{"type": CONTAINER, "name": "outsider", "id": outsider.id}],
            protect=False,
            generate_code=False,
        )
        assert imported.summary.result == "succeeded"
        state = resources(stack)["outsider"]
        assert state["id"] == outsider.id
        assert state["outputs"]["name"] == outsider.name
        assert state["outputs"]["image"] == IMAGE  # as the Engine records it: the name it was run with
        # The imported container is the stack's now: destroy removes it along with the rest.
        destroyed = stack.destroy()
        assert destroyed.summary.resource_changes == {"delete": 5}
        with pytest.raises(docker.errors.NotFound):
            client.containers.get(outsider.id)
    finally:
        try:
            client.containers.get(outsider.id).remove(force=True)
        except docker.errors.NotFound:
            pass
    assert not client.containers.list(all=True, filters={"label": f"ai.modelship.test={label}"})
    assert not client.networks.list(filters={"label": f"ai.modelship.test={label}"})
    client.images.get(IMAGE)  # keep_locally: the local image stays


def test_the_plugin_serves_the_committed_schema():
    """toolchain/pulumi.sh builds the schema generator only when the sources or pins that the committed schema was
    made from (schema.inputs) moved, and then rewrites both files: a checkout where it did holds a stale commit."""
    schema = ROOT / "toolchain" / "pulumi" / "docker"
    changed = subprocess.run(["git", "status", "--porcelain", "--", "schema.json", "schema.inputs"], cwd=schema,
                             capture_output=True, text=True, check=True).stdout
    assert changed == "", f"the bootstrap regenerated the docker schema: commit toolchain/pulumi/docker/schema.*\n{changed}"
    done = subprocess.run(["pulumi", "package", "get-schema", "docker"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"`pulumi package get-schema docker` failed: {done.stderr}"
    assert json.loads(done.stdout) == json.loads((schema / "schema.json").read_text())


def test_the_plugin_schema_has_the_property_names_of_the_pypi_sdk():
    """Every resource (inputs and outputs) and every nested type of the plugin's schema has the property names of
    the SDK's classes: what the SDK sends is what the plugin reads, and what it returns the SDK knows."""
    done = subprocess.run(["pulumi", "package", "get-schema", "docker"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"`pulumi package get-schema docker` failed: {done.stderr}"
    schema = json.loads(done.stdout)
    assert schema["name"] == "docker" and schema["version"] == "5.2.0"
    pairs = [(pulumi_docker.ProviderArgs, input_type_py_to_pulumi_names, schema["provider"]["inputProperties"])]
    for token, spec in schema["resources"].items():
        name = token.rsplit(":", 1)[1]
        pairs.append((getattr(pulumi_docker, f"{name}Args"), input_type_py_to_pulumi_names, spec["inputProperties"]))
        pairs.append((getattr(pulumi_docker, name), resource_py_to_pulumi_names, spec["properties"]))
    for token, spec in schema["types"].items():
        name = token.rsplit(":", 1)[1]
        if spec.get("type") != "object":
            continue
        if hasattr(pulumi_docker, f"{name}Args"):  # input types
            pairs.append((getattr(pulumi_docker, f"{name}Args"), input_type_py_to_pulumi_names, spec["properties"]))
        if hasattr(pulumi_docker.outputs, name):  # output types
            pairs.append((getattr(pulumi_docker.outputs, name), _py_to_pulumi_names_from_py_properties, spec["properties"]))
    compared, mismatched = 0, {}
    for cls, names_of, properties in pairs:
        sdk = set(names_of(cls).values())
        compared += len(sdk)
        if sdk != set(properties):
            mismatched[cls.__name__] = sorted(sdk ^ set(properties))
    assert not mismatched, mismatched
    assert compared > 1000, compared
    # pulumi-docker's native (build) Image is the one resource the bridge does not make: the program uses docker-build.
    sdk_resources = {n for n, c in vars(pulumi_docker).items()
                     if isinstance(c, type) and issubclass(c, pulumi.CustomResource) and n != "Provider"}
    assert sdk_resources - {tok.rsplit(":", 1)[1] for tok in schema["resources"]} == {"Image"}
