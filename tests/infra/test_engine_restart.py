"""A Docker Engine restart brings the dev stack back by itself, and the next `up` changes nothing.

The stack runs on a Docker Engine of the test's own, in its own network namespace (tests/infra/private_engine.py),
which is stopped as a service manager stops it (SIGTERM: it stops every container) and started again; restarting
the machine's engine would take down whatever else runs on it. Own stack name, ports and registry (`e14-*`).
"""
from __future__ import annotations

import time

import pytest

from tests.infra.engine import STACK_LABEL, EngineStack, engine_stack, missing_toolchain
from tests.infra.private_engine import PrivateEngine

STACK = "e14-restart"
HOST_PORT, REGISTRY_PORT, PROMETHEUS_PORT = 28080, 25000, 29090
BASE_IMAGES = ["modelship/python-base:3.11", "modelship/registry:2", "modelship/prometheus:2", "modelship/alertmanager:0",
               "modelship/haproxy:2.6"]


@pytest.fixture(scope="module")
def engine() -> PrivateEngine:
    private = PrivateEngine("e14")
    private.start()
    yield private
    private.remove()


@pytest.fixture(scope="module")
def dev(tmp_path_factory, engine) -> EngineStack:
    missing = missing_toolchain()
    if missing:
        pytest.fail("real-engine tests need: " + "; ".join(missing), pytrace=False)
    engine.load(BASE_IMAGES)
    es = engine_stack(tmp_path_factory.mktemp("e14-restart"), STACK)
    # The CLI, the program, its provider hosts and the image build all talk to the private engine.
    es.env["DOCKER_HOST"] = engine.host
    es.stack.workspace.env_vars["DOCKER_HOST"] = engine.host
    es.write_config({
        "target": "docker",
        "model": {"overrides": {"epochs": 3}, "search": False},
        "gate": {"thresholds": {"accuracy": 0.8}},
        "registry": {"kind": "local", "port": REGISTRY_PORT},
        "workload": {"hostPort": HOST_PORT},
        "monitoring": {"prometheusPort": PROMETHEUS_PORT},
    })
    yield es
    es.stack.destroy(on_output=print)
    es.stack.workspace.remove_stack(STACK)


def running(engine: PrivateEngine) -> dict[str, str]:
    """Name -> state of the stack's containers on the private engine."""
    listed = engine.docker("ps", "-a", "--filter", f"label={STACK_LABEL}=modelship/{STACK}", "--format", "{{.Names}} {{.State}}",
                           text=True)
    return dict(line.split() for line in listed.stdout.splitlines())


def ready(engine: PrivateEngine, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if engine.get(f"http://127.0.0.1:{HOST_PORT}/v2/health/ready") == 200:
            return True
        time.sleep(0.5)
    return False


def test_engine_restart_brings_the_stack_back_and_the_next_up_changes_nothing(dev, engine):
    dev.stack.up(on_output=print)
    before = running(engine)
    assert len(before) >= 3 and set(before.values()) == {"running"}, before
    assert ready(engine, 30)

    engine.restart()
    deadline = time.monotonic() + 120
    while running(engine) != before:
        assert time.monotonic() < deadline, f"after the engine restart: {running(engine)}, before: {before}"
        time.sleep(1)
    assert ready(engine, 60), "the server did not answer again after the engine restart"

    steps, _ = dev.changes()
    assert steps == {}, f"the preview after an engine restart wants changes: {steps}"
    result = dev.stack.up()
    assert set(result.summary.resource_changes) == {"same"}, result.summary.resource_changes
    assert running(engine) == before
