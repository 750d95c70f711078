"""The real engine through the Automation API, against a temporary local backend.

The program runs from a scratch project directory whose entries link back to the repository, so the
tests' stack files and state never touch the repository's own.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import yaml
from pulumi import automation as auto

from infra.recovery import STACK_LABEL

ROOT = Path(__file__).resolve().parents[2]
# What the dev stack needs from toolchain/ (versions as toolchain/versions.env and requirements.txt pin them).
REQUIRED_PLUGINS = {"docker-build": "0.0.22", "docker": "5.2.0"}
LINKED = ("__main__.py", "infra", "model", "app", "monitoring", "toolchain", "policy", "venv", "examples")


def missing_toolchain() -> list[str]:
    """What the real-engine tests need and this machine lacks, each named."""
    if shutil.which("pulumi") is None:
        return ["the pulumi CLI (run `source toolchain/env.sh` after toolchain/bootstrap.sh)"]
    listed = subprocess.run(["pulumi", "plugin", "ls", "--json"], capture_output=True, text=True)
    have = {(p["name"], p["version"].lstrip("v")) for p in json.loads(listed.stdout or "[]") if p.get("kind") == "resource"}
    return [f"pulumi-resource-{n} {v}" for n, v in REQUIRED_PLUGINS.items() if (n, v) not in have]


def made_by(client: docker.DockerClient, stack: str, registry_port: int) -> dict[str, list[str]]:
    """Containers and networks carrying the stack's label (infra/docker_engine.py puts it on everything the
    stack makes), and images named after the stack's own registry; by name."""
    label = f"{STACK_LABEL}=modelship/{stack}"
    return {
        "containers": sorted(c.name for c in client.containers.list(all=True, filters={"label": label})),
        "networks": sorted(n.name for n in client.networks.list(filters={"label": label})),
        "images": sorted(t for i in client.images.list() for t in i.tags if t.startswith(f"localhost:{registry_port}/")),
    }


def remove_registry_images(client: docker.DockerClient, registry_port: int) -> None:
    """Every image named after the registry on `registry_port` (build tags and pulled digest references): what a
    test stack leaves in the Engine's store, since its images are kept there (infra/container.py)."""
    prefix = f"localhost:{registry_port}/"
    for image in client.images.list():
        if any(name.startswith(prefix) for name in image.tags + (image.attrs.get("RepoDigests") or [])):
            client.images.remove(image.id, force=True)


@dataclass
class EngineStack:
    stack: auto.Stack
    workdir: Path
    name: str
    # The backend settings the stack's CLI runs with: what in-process callers of the CLI must set too.
    env: dict[str, str]

    def write_config(self, sections: dict[str, Any]) -> None:
        settings = {"config": {f"modelship:{k}": v for k, v in sections.items()}}
        (self.workdir / f"Pulumi.{self.name}.yaml").write_text(yaml.safe_dump(settings))

    def changes(self, **kwargs) -> tuple[dict[str, str], auto.PreviewResult]:
        """A preview's non-`same` steps, URN -> op."""
        steps: dict[str, str] = {}

        def on_event(event: auto.EngineEvent) -> None:
            pre = event.resource_pre_event
            if pre is not None and pre.metadata.op != auto.OpType.SAME:
                steps[pre.metadata.urn] = pre.metadata.op.value

        result = self.stack.preview(on_event=on_event, **kwargs)
        return steps, result


def engine_stack(tmp: Path, name: str) -> EngineStack:
    workdir = tmp / "project"
    workdir.mkdir()
    for entry in LINKED:
        (workdir / entry).symlink_to(ROOT / entry)
    shutil.copy(ROOT / "Pulumi.yaml", workdir / "Pulumi.yaml")
    (tmp / "state").mkdir()
    env = {
        "PULUMI_BACKEND_URL": f"file://{tmp / 'state'}",
        "PULUMI_CONFIG_PASSPHRASE": "engine-test",
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
    }
    # The CLI, and the program it runs (which reads its own outputs through the CLI for gate.onFail: keep),
    # get these; this process keeps its own, so that no later test inherits this backend.
    stack = auto.create_or_select_stack(
        stack_name=name, work_dir=str(workdir), opts=auto.LocalWorkspaceOptions(env_vars=env)
    )
    return EngineStack(stack, workdir, name, env)
