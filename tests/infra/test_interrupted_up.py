"""An interrupted `pulumi up` does not wedge the stack: the next `make up` finishes the job with no manual step
(infra/recovery.py, docs/contracts.md *Recovery*).

One dev-like stack on the real engine and the machine's Docker Engine. Each case changes
`model.overrides.epochs` (a new model: training, an image build, and the replacement of the server and of
Prometheus, both on fixed host ports), starts `make up`'s recipe, SIGKILLs its `pulumi up` process at one
point of the update, then runs the recipe again as `make up` would and checks: it exits 0, the endpoint serves
the new model, the state's container ids are what Docker runs under the stack's label, nothing is orphaned,
no lock and no pending operation is left. The cases run in order on the one stack (each starts from the
state the one before left, as a user's next change would).

Own stack name, ports and image name (`recover-*`, 22080, 22000, 22090, 22093), its own backend; everything
it makes is removed at the end.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import docker
import httpx
import pytest

from tests.infra.engine import ROOT, STACK_LABEL, EngineStack, engine_stack, missing_toolchain
from tests.infra.harness import quick_dev_config

STACK = "recover-interrupted"
OWNER = f"modelship/{STACK}"
IMAGE_NAME = f"{STACK}/server"
HOST_PORT, REGISTRY_PORT, PROMETHEUS_PORT, ALERTMANAGER_PORT = 22080, 22000, 22090, 22093
BASE_EPOCHS = 2
UP_TIMEOUT_S = 1500
KILL_WAIT_S = 900


def make_up_commands(stack: str) -> str:
    """`make up`'s recipe for `stack`, as make expands it, without the bootstrap line (the toolchain is there)."""
    listed = subprocess.run(["make", "-s", "-n", "-f", str(ROOT / "Makefile"), "up", f"STACK={stack}"],
                            capture_output=True, text=True, check=True)
    lines = [line for line in listed.stdout.splitlines() if line and not line.startswith("toolchain/bootstrap.sh")]
    assert len(lines) == 1 and "infra.recovery" in lines[0], listed.stdout
    return lines[0]


@dataclass
class Run:
    returncode: int
    output: str
    seconds: float


def start_make_up(es: EngineStack) -> subprocess.Popen:
    return subprocess.Popen(["bash", "-c", make_up_commands(STACK)], cwd=es.workdir, env={**os.environ, **es.env},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


def interrupt(run: subprocess.Popen) -> None:
    """Ends a `make up` this test gave up on as Ctrl-C would (the update cancels and releases its lock), so that
    the next case does not meet it."""
    if run.poll() is None:
        os.killpg(run.pid, signal.SIGINT)
        try:
            run.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            os.killpg(run.pid, signal.SIGKILL)
            run.communicate()


def make_up(es: EngineStack) -> Run:
    started = time.monotonic()
    proc = start_make_up(es)
    output, _ = proc.communicate(timeout=UP_TIMEOUT_S)
    return Run(proc.returncode, output, time.monotonic() - started)


# --- processes ------------------------------------------------------------------------------------


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        tree.setdefault(ppid, []).append(int(stat.parent.name))
    return tree


def descendants(pid: int) -> list[int]:
    tree, found, todo = _children(), [], [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def pulumi_up_pid(root: int) -> int | None:
    return next((p for p in descendants(root) if re.match(r"\S*pulumi up ", cmdline(p))), None)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").exists() and " Z " not in Path(f"/proc/{pid}/stat").read_text()


# --- what the stack runs --------------------------------------------------------------------------


def labelled(client: docker.DockerClient) -> dict[str, str]:
    """Container id -> name of everything carrying the stack's label. One listing call (the high-level list
    inspects each container after, and an update removes containers meanwhile)."""
    listed = client.api.containers(all=True, filters={"label": f"{STACK_LABEL}={OWNER}"})
    return {c["Id"]: c["Names"][0].lstrip("/") for c in listed}


def export(es: EngineStack) -> dict:
    done = subprocess.run(["pulumi", "stack", "export", "--stack", STACK], cwd=es.workdir, env={**os.environ, **es.env},
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout)["deployment"]


def state_ids(deployment: dict) -> set[str]:
    return {r["id"] for r in deployment.get("resources") or [] if r.get("id")}


def served_model(timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            metrics = httpx.get(f"http://127.0.0.1:{HOST_PORT}/metrics", timeout=5).text
            return re.search(r'^modelship_model_info\{[^}]*model_id="([0-9a-f]+)"', metrics, re.M).group(1)
        except (httpx.HTTPError, AttributeError):
            assert time.monotonic() < deadline, f"nothing serves on {HOST_PORT}"
            time.sleep(0.5)


# --- kill points ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Context:
    client: docker.DockerClient
    store: Path
    before: dict[str, str]  # the stack's containers before the update


def training(ctx: Context, pulumi_pid: int) -> bool:
    # model/store.py builds an entry in `.tmp/<model id>-*` of the store: the program is training.
    return any((ctx.store / ".tmp").glob("*-*"))


def image_build(ctx: Context, pulumi_pid: int) -> bool:
    return any("buildx" in cmdline(p) and " build " in cmdline(p) for p in descendants(pulumi_pid))


def new_server(ctx: Context, pulumi_pid: int) -> bool:
    # By name, whatever the provider's naming adds around it (a random suffix, a stack prefix).
    return any("server" in name for id_, name in labelled(ctx.client).items() if id_ not in ctx.before)


def prometheus_replace(ctx: Context, pulumi_pid: int) -> bool:
    # The old Prometheus is gone (a fixed host port: deleted before its replacement is created).
    old = {id_ for id_, name in ctx.before.items() if "prometheus" in name}
    assert old, f"no Prometheus among the stack's containers: {ctx.before}"
    return not old & set(labelled(ctx.client))


KILL_POINTS: dict[str, Callable[[Context, int], bool]] = {
    "training": training,
    "image-build": image_build,
    "new-server-container": new_server,
    "prometheus-replace": prometheus_replace,
}


# --- the stack --------------------------------------------------------------------------------------


@dataclass
class Dev:
    es: EngineStack
    store: Path
    config: dict
    client: docker.DockerClient
    epochs: int = BASE_EPOCHS

    def next_model(self) -> None:
        self.epochs += 1
        self.config["model"]["overrides"] = {"epochs": self.epochs}
        self.es.write_config(self.config)


@pytest.fixture(scope="module")
def dev(tmp_path_factory) -> Dev:
    missing = missing_toolchain()
    if missing:
        pytest.fail("real-engine tests need: " + "; ".join(missing), pytrace=False)
    client = docker.from_env()
    tmp = tmp_path_factory.mktemp("recover")
    es = engine_stack(tmp, STACK)
    store = tmp / "store"
    config = quick_dev_config(store, epochs=BASE_EPOCHS)
    config.update({
        "model": {**config["model"], "search": False, "overrides": {"epochs": BASE_EPOCHS}},
        "gate": {"thresholds": {"accuracy": 0.8}},
        "image": {"name": IMAGE_NAME},
        "registry": {"kind": "local", "port": REGISTRY_PORT},
        "workload": {"hostPort": HOST_PORT},
        "monitoring": {"prometheusPort": PROMETHEUS_PORT, "alertmanagerPort": ALERTMANAGER_PORT},
    })
    es.write_config(config)
    first = make_up(es)
    assert first.returncode == 0, first.output[-4000:]
    yield Dev(es, store, config, client)
    try:
        es.stack.destroy(on_output=print)
        es.stack.workspace.remove_stack(STACK)
    finally:
        remove_everything(client)


def remove_everything(client: docker.DockerClient) -> None:
    """What this test made, whatever state it ended in: labelled containers, networks and volumes, and images."""
    selector = {"label": f"{STACK_LABEL}={OWNER}"}
    for container in client.containers.list(all=True, filters=selector):
        container.remove(force=True, v=True)
    for network in client.networks.list(filters=selector):
        network.remove()
    for image in client.images.list():
        for tag in image.tags:
            if STACK in tag:
                client.images.remove(tag, force=True)


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_the_next_make_up_finishes_an_interrupted_one(dev, point):
    served_before = served_model()
    dev.next_model()
    ctx = Context(dev.client, dev.store, labelled(dev.client))

    run = start_make_up(dev.es)
    deadline, pulumi_pid = time.monotonic() + KILL_WAIT_S, None
    try:
        while True:
            assert run.poll() is None, f"make up ended before the kill point {point}:\n{run.communicate()[0][-4000:]}"
            assert time.monotonic() < deadline, f"kill point {point} never came"
            pulumi_pid = pulumi_pid or pulumi_up_pid(run.pid)
            if pulumi_pid and KILL_POINTS[point](ctx, pulumi_pid):
                break
            time.sleep(0.1)
    except BaseException:
        interrupt(run)
        raise
    left_behind = descendants(pulumi_pid)
    try:
        os.kill(pulumi_pid, signal.SIGKILL)
        killed_at = time.monotonic()
        interrupted, _ = run.communicate(timeout=60)
        assert run.returncode != 0, interrupted[-2000:]
        survivors = [f"{p}: {cmdline(p)[:80]}" for p in left_behind if alive(p)]
        print(f"\n[{point}] killed pulumi up {pulumi_pid}; its processes still alive: {survivors}")

        again = make_up(dev.es)
        serving_again = time.monotonic() - killed_at
        recovery = [line for line in again.output.splitlines() if line.startswith("recovery:")]
        print(f"[{point}] the next make up took {again.seconds:.0f} s; kill to serving the new model: "
              f"{serving_again:.0f} s\n" + "\n".join(recovery))
        assert again.returncode == 0, again.output[-6000:]
        assert any("released the stale lock" in line and str(pulumi_pid) in line for line in recovery), recovery
        # The killed run's plugins (they outlive their engine) were stopped before orphans were looked for.
        lingering = [f"{p}: {cmdline(p)[:80]}" for p in left_behind if alive(p)]
        assert lingering == [], lingering

        outputs = dev.es.stack.outputs()
        new_model = outputs["modelId"].value
        assert new_model != served_before and served_model() == new_model
        deployment = export(dev.es)
        assert not deployment.get("pending_operations"), deployment["pending_operations"]
        running = labelled(dev.client)
        containers = {r["id"] for r in deployment["resources"] if r["type"].endswith(":Container") and r.get("id")}
        assert containers == set(running), f"state: {containers}, docker: {running}"
        networks = {n.id for n in dev.client.networks.list(filters={"label": f"{STACK_LABEL}={OWNER}"})}
        assert networks <= state_ids(deployment), "a labelled network the state does not know"
        assert not locks(dev.es)
    finally:
        # The killed run's processes are this test's: none outlives the case, whatever it found.
        for pid in left_behind:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def locks(es: EngineStack) -> list[Path]:
    return list((Path(es.env["PULUMI_BACKEND_URL"].removeprefix("file://")) / ".pulumi" / "locks").rglob("*.json"))


def lock_pid(lock: Path) -> int | None:
    try:
        return json.loads(lock.read_text())["pid"]
    except (OSError, ValueError):  # released, or half-written, meanwhile
        return None


def test_a_second_make_up_refuses_while_one_runs_and_touches_nothing(dev):
    """Recovery leaves a live lock alone: the second `make up` refuses through the backend's lock, the first
    finishes, and no container of the first was taken for an orphan."""
    before = labelled(dev.client)
    first = start_make_up(dev.es)
    deadline = time.monotonic() + 300
    try:
        # The lock of the first's `pulumi up` (its recovery holds one too, for a moment).
        while not (held := [lock for lock in locks(dev.es) if pulumi_up_pid(first.pid) == lock_pid(lock)]):
            assert first.poll() is None, f"the first make up ended before it took the lock:\n{first.communicate()[0][-3000:]}"
            assert time.monotonic() < deadline, "the first make up's pulumi up never took the backend's lock"
            time.sleep(0.2)
    except BaseException:
        interrupt(first)
        raise
    try:
        second = make_up(dev.es)
        assert second.returncode != 0 and "the stack is currently locked" in second.output, second.output[-3000:]
        # Recovery says "left alone" when it meets the first's lock; it may also run in a moment the first holds
        # none (the CLI locks its preview and its update apiece): then it finds nothing to do. Either way it
        # releases and removes nothing.
        assert not any(f"recovery: {done}" in second.output for done in ("released", "removed", "stopped")), second.output[-3000:]
    finally:
        output, _ = first.communicate(timeout=UP_TIMEOUT_S)
    assert first.returncode == 0, output[-4000:]
    assert labelled(dev.client) == before and locks(dev.es) == []
