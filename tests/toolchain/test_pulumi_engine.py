"""The Pulumi engine built by toolchain/pulumi.sh runs a real Python program with the provider plugins built there.

Runs preview, up, a no-op up and destroy of a throwaway project (engine_project/) against a temporary file backend,
through the Automation API. Needs `make bootstrap` (toolchain/pulumi.sh) and the environment of toolchain/env.sh.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from pulumi import automation as auto

from tests.toolchain.probe import probe_stack

ROOT = Path(__file__).resolve().parents[2]
PROJECT = Path(__file__).with_name("engine_project")
FIX = "run `make bootstrap` (toolchain/pulumi.sh builds and installs it) and `source toolchain/env.sh`"


def pinned() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "toolchain" / "versions.env").read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep and not line.lstrip().startswith("#"):
            pins[name.strip()] = value.strip()
    return pins


PINS = pinned()
PLUGINS = {"docker-build": PINS["PULUMI_DOCKER_BUILD_VERSION"], "kubernetes": PINS["PULUMI_KUBERNETES_VERSION"],
           "docker": PINS["PULUMI_DOCKER_VERSION"]}


def pulumi(*args: str) -> str:
    if shutil.which("pulumi") is None:
        pytest.fail(f"the pulumi CLI is not on PATH: {FIX}")
    done = subprocess.run(["pulumi", *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"`pulumi {' '.join(args)}` failed: {done.stderr}"
    return done.stdout


def installed_plugins() -> set[tuple[str, str]]:
    listed = json.loads(pulumi("plugin", "ls", "--json") or "[]")
    return {(p["name"], p["version"].lstrip("v")) for p in listed if p["kind"] == "resource"}


def test_cli_is_the_pinned_version():
    assert pulumi("version").strip() == "v" + PINS["PULUMI_VERSION"]


def test_each_built_plugin_is_installed_at_its_pinned_version():
    missing = set(PLUGINS.items()) - installed_plugins()
    assert not missing, f"provider plugins missing from `pulumi plugin ls`: {sorted(missing)}: {FIX}"


def test_engine_runs_a_python_program_through_its_lifecycle(tmp_path: Path, docker_client):
    missing = set(PLUGINS.items()) - installed_plugins()
    assert not missing, f"provider plugins missing: {sorted(missing)}: {FIX}"
    work = tmp_path / "project"
    shutil.copytree(PROJECT, work)
    context = tmp_path / "context"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM scratch\nCOPY hello.txt /hello.txt\n")
    (context / "hello.txt").write_text("built offline by the engine test\n")
    manifests = tmp_path / "manifests"
    tag = f"modelship/engine-test:{uuid.uuid4().hex[:12]}"
    stack = probe_stack(work, "engine-probe")
    stack.set_all_config(
        {
            "tag": auto.ConfigValue(tag),
            "context": auto.ConfigValue(str(context)),
            "manifests": auto.ConfigValue(str(manifests)),
        }
    )
    try:
        preview = stack.preview()
        assert preview.change_summary == {auto.OpType.CREATE: 4}  # stack, image, k8s provider, config map

        up = stack.up()
        assert up.summary.result == "succeeded"
        assert up.summary.resource_changes == {"create": 4}
        assert up.outputs["ref"].value == tag
        assert docker_client.images.get(tag).attrs["Config"] is not None
        rendered = list(manifests.rglob("*.yaml"))
        assert rendered and "probe" in rendered[0].read_text()

        again = stack.up()
        assert again.summary.resource_changes == {"same": 4}
    finally:
        destroyed = stack.destroy()
        stack.workspace.remove_stack("probe")
        if any(t == tag for image in docker_client.images.list() for t in image.tags):
            docker_client.images.remove(tag, force=True)
    assert destroyed.summary.resource_changes == {"delete": 4}
