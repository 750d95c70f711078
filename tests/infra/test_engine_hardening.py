"""The dev stack through the real engine under what must stay true: two `up`s of one stack at once (the second
refuses through the backend's lock, the first finishes), and secrets (the registry password, the bearer token)
found in none of the state export, the backend's files, the image's layers, the printed summary, the update's
output and the logs the program and its containers write. The stack runs with a Pulumi home without the
Kubernetes provider plugin, as a first `make up` of a docker stack bootstraps it.

Own stack name, ports and registry (`e14-*`, 28080, 25000, 29090, 29093), its own backend: a `make up` dev stack
on this machine is left alone. Needs the toolchain (tests/infra/engine.py names what is missing).
"""
from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import docker
import httpx
import pytest

from tests.infra.engine import ROOT, STACK_LABEL, EngineStack, engine_stack, missing_toolchain
from tests.infra.registry import local_registry

STACK = "e14-hardening"
HOST_PORT, REGISTRY_PORT, PROMETHEUS_PORT, ALERTMANAGER_PORT = 28080, 25000, 29090, 29093
PASSWORD = f"e14-registry-{secrets.token_hex(8)}"
TOKEN = f"e14-bearer-{secrets.token_hex(8)}"
SECRETS = (PASSWORD.encode(), TOKEN.encode())
LOCKED = "the stack is currently locked"


@pytest.fixture(scope="module")
def registry() -> str:
    # The stack's registry is "external" (this one), so that a password is configured and flows through the build.
    with local_registry(REGISTRY_PORT) as server:
        yield server


@pytest.fixture(scope="module")
def dev(tmp_path_factory, registry) -> EngineStack:
    missing = missing_toolchain()
    if missing:
        pytest.fail("real-engine tests need: " + "; ".join(missing), pytrace=False)
    tmp = tmp_path_factory.mktemp("e14-engine")
    es = engine_stack(tmp, STACK)
    home = docker_only_pulumi_home(tmp / "pulumi-home")
    es.env["PULUMI_HOME"] = home
    es.stack.workspace.env_vars["PULUMI_HOME"] = home
    es.write_config({
        "target": "docker",
        "model": {"overrides": {"epochs": 3}, "search": False},
        "gate": {"thresholds": {"accuracy": 0.8}},
        "registry": {"kind": "external", "server": registry, "username": "ci"},
        "workload": {"hostPort": HOST_PORT},
        "monitoring": {"prometheusPort": PROMETHEUS_PORT, "alertmanagerPort": ALERTMANAGER_PORT},
    })
    es.stack.set_config("modelship:registry.password", _secret(PASSWORD), path=True)
    es.stack.set_config("modelship:workload.authToken", _secret(TOKEN), path=True)
    yield es
    es.stack.destroy(on_output=print)
    es.stack.workspace.remove_stack(STACK)


def docker_only_pulumi_home(home: Path) -> str:
    """A PULUMI_HOME with this machine's plugins but the Kubernetes provider."""
    installed = Path(os.environ["PULUMI_HOME"]) / "plugins"
    (home / "plugins").mkdir(parents=True)
    for entry in installed.iterdir():
        if entry.name.startswith("resource-kubernetes-"):
            continue
        if entry.is_dir():
            shutil.copytree(entry, home / "plugins" / entry.name, copy_function=_link_or_copy)
        else:  # an install's marker files
            shutil.copy(entry, home / "plugins" / entry.name)
    return str(home)


def _link_or_copy(source: str, destination: str) -> None:
    try:
        os.link(source, destination)  # no second copy of an 80 MB binary where the file system allows it
    except OSError:
        shutil.copy2(source, destination)


def _secret(value: str):
    from pulumi import automation as auto

    return auto.ConfigValue(value, secret=True)


def cli(es: EngineStack, *args: str) -> subprocess.Popen:
    """`pulumi <args>` as `make up` runs it, on the stack's backend, output captured."""
    return subprocess.Popen(
        ["pulumi", *args, "--stack", STACK, "--non-interactive"], cwd=es.workdir, env={**os.environ, **es.env},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def locks(es: EngineStack) -> list[Path]:
    state = Path(es.env["PULUMI_BACKEND_URL"].removeprefix("file://"))
    return list(state.glob(f".pulumi/locks/**/{STACK}/*.json"))


@dataclass(frozen=True)
class Ups:
    first: str
    second: str
    second_returncode: int


@pytest.fixture(scope="module")
def ups(dev) -> Ups:
    """The stack's first `pulumi up`, and a second one started while the first holds the lock; their outputs."""
    first = cli(dev, "up", "--yes", "--suppress-outputs")
    deadline = time.monotonic() + 120
    while not locks(dev):
        assert first.poll() is None, f"the first up ended before it took the lock:\n{first.communicate()[0]}"
        assert time.monotonic() < deadline, "the first up never took the backend's lock"
        time.sleep(0.2)
    second = cli(dev, "up", "--yes")
    second_output, _ = second.communicate(timeout=300)
    output, _ = first.communicate(timeout=1800)
    assert first.returncode == 0, output[-4000:]
    return Ups(output, second_output, second.returncode)


def test_a_second_up_of_the_same_stack_refuses_while_the_first_runs(dev, ups):
    assert ups.second_returncode != 0 and LOCKED in ups.second, ups.second[-2000:]
    # The first one was not disturbed: it finished, released the lock, and the stack serves.
    assert locks(dev) == []
    answer = httpx.get(f"http://127.0.0.1:{HOST_PORT}/v2/health/ready", timeout=10)
    assert answer.status_code == 200


def test_a_docker_stack_needs_no_kubernetes_provider(dev, ups):
    plugins = subprocess.run(["pulumi", "plugin", "ls"], env={**os.environ, **dev.env}, capture_output=True, text=True)
    assert plugins.returncode == 0 and "docker-build" in plugins.stdout, plugins.stderr
    assert "kubernetes" not in plugins.stdout, plugins.stdout


def test_the_bearer_token_guards_the_endpoint(dev, ups):
    body = {"instances": [[0.0] * 64]}
    url = f"http://127.0.0.1:{HOST_PORT}/v1/models/model:predict"
    assert httpx.post(url, json=body, timeout=10).status_code == 401
    assert httpx.post(url, json=body, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10).status_code == 200


def found(data: bytes) -> list[str]:
    return [s.decode() for s in SECRETS if s in data]


def test_secrets_are_not_in_the_state(dev, ups):
    export = cli(dev, "stack", "export")
    text, _ = export.communicate(timeout=120)
    assert export.returncode == 0, text
    assert found(text.encode()) == []
    # Nor in any file of the backend (checkpoints, their backups, the update history).
    state = Path(dev.env["PULUMI_BACKEND_URL"].removeprefix("file://"))
    files = [p for p in state.rglob("*") if p.is_file()]
    assert files and {str(p): found(p.read_bytes()) for p in files if found(p.read_bytes())} == {}


def test_secrets_are_not_in_the_image_layers(dev, ups):
    ref = dev.stack.outputs()["imageRef"].value.split("@")[0]
    save = subprocess.Popen(["docker", "save", ref], stdout=subprocess.PIPE)
    tail, size = b"", 0
    longest = max(len(s) for s in SECRETS)
    while chunk := save.stdout.read(1 << 20):
        window = tail + chunk
        assert found(window) == [], f"a secret is in the layers of {ref}"
        tail, size = window[-longest:], size + len(chunk)
    assert save.wait() == 0 and size > 10 * 2**20, f"docker save {ref} gave {size} bytes"


def test_secrets_are_not_in_the_summary_the_update_output_or_the_logs(dev, ups):
    summary = subprocess.run(
        [sys.executable, "-m", "infra.stack_outputs", "--stack", STACK], cwd=ROOT, env={**os.environ, **dev.env},
        capture_output=True, text=True,
    )
    assert summary.returncode == 0 and "endpoint:" in summary.stdout, summary.stderr
    assert "Bearer $MODELSHIP_TOKEN" in summary.stdout  # the curl names the token, never shows it
    assert found(summary.stdout.encode() + summary.stderr.encode()) == []
    assert found(ups.first.encode()) == [] and found(ups.second.encode()) == []
    logs = [p for p in (ROOT / ".modelship" / "logs").rglob("*") if p.is_file()]
    assert {str(p): found(p.read_bytes()) for p in logs if found(p.read_bytes())} == {}
    client = docker.from_env()
    made = client.containers.list(all=True, filters={"label": f"{STACK_LABEL}=modelship/{STACK}"})
    assert len(made) >= 3, [c.name for c in made]
    assert {c.name: found(c.logs()) for c in made if found(c.logs())} == {}
