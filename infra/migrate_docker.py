"""One-time upgrade of a stack whose Docker resources were made by modelship's former dynamic provider.

Until the Docker target moved onto pulumi-docker, its containers, networks and pulled images were dynamic
resources (`pulumi-python:dynamic/docker:*`). Their state cannot be carried over to pulumi-docker's types (another
provider, another schema; an alias would hand the old state to a provider that cannot read it), so this forgets
them and removes what they made: containers (with their anonymous volumes, so the local registry's content goes
too) and networks; images stay in the Engine's store. It also forgets the stack's pushed image, so that the next
`up` builds it (from the build cache) and pushes it into the new registry. That `up` then makes everything with
pulumi-docker: a one-time restart of the stack.

`make up` runs this before `pulumi up`; on a stack without such resources it changes nothing.
Usage: python -m infra.migrate_docker --stack dev
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from typing import Any

LEGACY_PREFIX = "pulumi-python:dynamic/docker:"
# The dynamic provider's own provider resource (infra/docker_engine.py's former `provider_host`).
LEGACY_PROVIDER = "pulumi:providers:pulumi-python"
# Pushed into the registry container that goes: forgotten so that the next `up` pushes it again.
PUSHED_IMAGE = "docker-build:index:Image"


@dataclass
class Migration:
    deployment: dict[str, Any]
    forgotten: list[str] = field(default_factory=list)
    containers: list[str] = field(default_factory=list)
    networks: list[str] = field(default_factory=list)


def plan(deployment: dict[str, Any]) -> Migration:
    """The deployment without the legacy resources (and references to them), and the Docker objects to remove."""
    resources = deployment.get("resources") or []
    legacy = [r for r in resources if r["type"].startswith(LEGACY_PREFIX)]
    if not legacy:
        return Migration(deployment)
    gone = {r["urn"] for r in legacy}
    gone |= {r["urn"] for r in resources if r["type"] in (LEGACY_PROVIDER, PUSHED_IMAGE)}
    kept = []
    for resource in resources:
        if resource["urn"] in gone:
            continue
        resource = dict(resource)
        resource["dependencies"] = [d for d in resource.get("dependencies") or [] if d not in gone]
        if resource.get("propertyDependencies"):
            resource["propertyDependencies"] = {
                prop: [d for d in deps if d not in gone] for prop, deps in resource["propertyDependencies"].items()
            }
        if resource.get("deletedWith") in gone:
            del resource["deletedWith"]
        kept.append(resource)
    return Migration(
        {**deployment, "resources": kept, "pending_operations": []},
        forgotten=sorted(gone),
        containers=[r["id"] for r in legacy if r["type"].endswith(":Container") and r.get("id")],
        networks=[r["id"] for r in legacy if r["type"].endswith(":Network") and r.get("id")],
    )


def remove_objects(migration: Migration) -> None:
    import docker

    client = docker.from_env()
    for container_id in migration.containers:
        try:
            client.containers.get(container_id).remove(force=True, v=True)
        except docker.errors.NotFound:
            pass
    for network_id in migration.networks:  # after the containers attached to them
        try:
            client.networks.get(network_id).remove()
        except docker.errors.NotFound:
            pass


def _pulumi(*args: str, **kwargs: Any) -> subprocess.CompletedProcess:
    done = subprocess.run(["pulumi", *args], capture_output=True, text=True, **kwargs)
    if done.returncode != 0:
        raise SystemExit(f"migrate_docker: `pulumi {' '.join(args)}` failed:\n{done.stderr}")
    return done


def migrate(stack: str) -> Migration:
    exported = json.loads(_pulumi("stack", "export", "--stack", stack).stdout)
    migration = plan(exported.get("deployment") or {})
    if not migration.forgotten:
        return migration
    print(f"migrate_docker: stack {stack} was made by the former dynamic Docker provider; forgetting "
          f"{len(migration.forgotten)} resources and removing {len(migration.containers)} containers and "
          f"{len(migration.networks)} networks, once. The `up` that follows makes them again with pulumi-docker.",
          file=sys.stderr)
    remove_objects(migration)
    with tempfile.NamedTemporaryFile("w", suffix=".json") as upgraded:
        json.dump({**exported, "deployment": migration.deployment}, upgraded)
        upgraded.flush()
        _pulumi("stack", "import", "--stack", stack, "--file", upgraded.name)
    return migration


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", required=True)
    migrate(parser.parse_args().stack)


if __name__ == "__main__":
    main()
