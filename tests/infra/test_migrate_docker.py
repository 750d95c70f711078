"""The one-time upgrade of a stack made by the former dynamic Docker provider (infra/migrate_docker.py): what it
forgets and removes, on a deployment shaped as that provider's states were, and nothing on a current one."""
from __future__ import annotations

import docker
import pytest

from infra.migrate_docker import Migration, plan, remove_objects

STACK = "urn:pulumi:dev::modelship::"


def resource(qualified_type: str, name: str, id_: str = "", **extra) -> dict:
    return {"urn": f"{STACK}{qualified_type}::{name}", "type": qualified_type.rsplit("$", 1)[-1], "id": id_, **extra}


def legacy_deployment() -> dict:
    provider = resource("pulumi:providers:pulumi-python", "docker", "p1")
    registry = resource("modelship:infra:Registry$pulumi-python:dynamic/docker:Container", "registry", "c-registry")
    built = resource("modelship:infra:ModelImage$docker-build:index:Image", "image", "i1",
                     dependencies=[registry["urn"]], propertyDependencies={"tags": [registry["urn"]]})
    network = resource("modelship:infra:ContainerWorkload$pulumi-python:dynamic/docker:Network", "server-net", "n1")
    server = resource("modelship:infra:ContainerWorkload$pulumi-python:dynamic/docker:Container", "server", "c-server",
                      dependencies=[network["urn"]])
    component = resource("modelship:infra:ContainerWorkload", "server")
    gate = resource("pulumi:providers:docker-build", "default_0_0_22", "p2")
    return {"manifest": {}, "resources": [provider, registry, built, network, server, component, gate],
            "pending_operations": [{"resource": server, "type": "creating"}]}


def test_legacy_resources_are_forgotten_and_their_docker_objects_listed():
    migration = plan(legacy_deployment())
    names = [urn.rsplit("::", 1)[1] for urn in migration.forgotten]
    assert sorted(names) == ["docker", "image", "registry", "server", "server-net"]
    assert migration.containers == ["c-registry", "c-server"] and migration.networks == ["n1"]
    kept = {r["urn"].rsplit("::", 1)[1]: r for r in migration.deployment["resources"]}
    assert sorted(kept) == ["default_0_0_22", "server"]  # the component and the docker-build provider
    assert migration.deployment["pending_operations"] == []


def test_references_to_forgotten_resources_are_dropped():
    deployment = legacy_deployment()
    keeper = resource("custom:index:Thing", "keeper", "k1", dependencies=[deployment["resources"][4]["urn"]],
                      propertyDependencies={"x": [deployment["resources"][4]["urn"]]},
                      deletedWith=deployment["resources"][3]["urn"])
    deployment["resources"].append(keeper)
    (kept,) = [r for r in plan(deployment).deployment["resources"] if r["urn"] == keeper["urn"]]
    assert kept["dependencies"] == [] and kept["propertyDependencies"] == {"x": []} and "deletedWith" not in kept


def test_a_current_stack_is_left_alone():
    current = {"resources": [resource("modelship:infra:ContainerWorkload$docker:index/container:Container", "server", "c")]}
    migration = plan(current)
    assert migration.forgotten == [] and migration.deployment is current


def test_removes_the_containers_and_networks_it_names():
    client = docker.from_env()
    network = client.networks.create("migrate-test-net")
    container = client.containers.create("modelship/python-base:3.11", ["sleep", "60"], network=network.name)
    try:
        remove_objects(Migration({}, containers=[container.id, "gone"], networks=[network.id]))
        with pytest.raises(docker.errors.NotFound):
            client.containers.get(container.id)
        with pytest.raises(docker.errors.NotFound):
            client.networks.get(network.id)
    finally:
        for cleanup in (lambda: container.remove(force=True), network.remove):
            try:
                cleanup()
            except docker.errors.NotFound:
                pass
