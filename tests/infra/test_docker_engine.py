"""The dynamic provider of infra/docker_engine.py, called as the engine calls it: check and diff on their own,
create, read and delete against the real Docker Engine (with the locally built Prometheus image)."""
from __future__ import annotations

import docker
import pytest
from pulumi.output import Unknown

from infra.docker_engine import STACK_LABEL, ContainerFailed, ContainerProvider, NetworkProvider, healthcheck

PROMETHEUS = "modelship/prometheus:2"
LABELS = {STACK_LABEL: "modelship/provider-test"}


def prometheus(config: str, host_port=None) -> dict:
    return {
        "name_prefix": "provider-test-prometheus-",
        "image": PROMETHEUS,
        "files": {"/etc/prometheus/prometheus.yml": config},
        "ports": {"9090/tcp": ["127.0.0.1", host_port]},
        "healthcheck": healthcheck(["CMD", "promtool", "query", "instant", "http://127.0.0.1:9090", "vector(1)"]),
        "labels": LABELS,
        "ready_timeout_s": 60,
    }


class TestCheckAndDiff:
    def test_check_names_once_and_a_replacement_gets_a_new_name(self):
        provider = ContainerProvider()
        first = provider.check({}, prometheus("{}"))
        assert first.failures == [] and first.inputs["name"].startswith("provider-test-prometheus-")
        assert provider.check(first.inputs, prometheus("{}")).inputs["name"] == first.inputs["name"]
        # The engine checks again without olds when it replaces.
        assert provider.check({}, prometheus("{}")).inputs["name"] != first.inputs["name"]

    def test_check_names_every_bad_property(self):
        bad = {**prometheus("{}"), "mem_limit": -1, "restart_policy": "always", "ports": {"9090/tcp": "x"}}
        failures = {f.property for f in ContainerProvider().check({}, bad).failures}
        assert {"mem_limit", "restart_policy", "ports.9090/tcp"} <= failures

    def test_unknown_values_pass_check_and_replace(self):
        provider = ContainerProvider()
        olds = provider.check({}, prometheus("{}")).inputs
        news = {**olds, "image": Unknown()}
        assert provider.check(olds, news).failures == []
        assert provider.diff("id", olds, news).replaces == ["image"]

    def test_any_change_replaces_and_a_fixed_host_port_deletes_first(self):
        provider = ContainerProvider()
        olds = provider.check({}, prometheus("{}", host_port=9090)).inputs
        assert provider.diff("id", olds, dict(olds)).changes is False
        fixed = provider.diff("id", olds, {**olds, "files": {"/etc/prometheus/prometheus.yml": "global: {}"}})
        assert fixed.replaces == ["files"] and fixed.delete_before_replace is True
        # Moving off the fixed port: the new container starts beside the old one.
        free = provider.diff("id", olds, {**olds, "ports": {"9090/tcp": ["127.0.0.1", None]}})
        assert free.replaces == ["ports"] and free.delete_before_replace is False

    def test_a_container_found_stopped_by_a_refresh_is_replaced(self):
        provider = ContainerProvider()
        olds = provider.check({}, prometheus("{}")).inputs
        assert provider.diff("id", {**olds, "status": "exited"}, olds).replaces == ["status"]


@pytest.fixture(scope="module")
def client() -> docker.DockerClient:
    client = docker.from_env()
    try:
        client.images.get(PROMETHEUS)
    except docker.errors.ImageNotFound:
        pytest.fail(f"{PROMETHEUS} is missing: run `make bootstrap` (toolchain/images.sh)", pytrace=False)
    return client


def ours(client: docker.DockerClient) -> list[str]:
    return [c.name for c in client.containers.list(all=True, filters={"label": f"{STACK_LABEL}=modelship/provider-test"})]


class TestAgainstTheEngine:
    def test_create_copies_the_files_waits_for_health_and_delete_removes_everything(self, client):
        networks, containers = NetworkProvider(), ContainerProvider()
        net_props = networks.check({}, {"name_prefix": "provider-test-net-", "labels": LABELS}).inputs
        network = networks.create(net_props)
        try:
            props = prometheus("global:\n  scrape_interval: 7s\n")
            props["networks"] = [{"name": network.outs["name"], "aliases": ["prometheus"]}]
            created = containers.create(containers.check({}, props).inputs)
            container = client.containers.get(created.id)
            assert container.health == "healthy" or container.status == "running"
            assert "scrape_interval: 7s" in container.exec_run(["cat", "/etc/prometheus/prometheus.yml"]).output.decode()
            assert created.outs["published"]["9090/tcp"] > 0
            assert created.outs["ip_addresses"][network.outs["name"]].count(".") == 3
            assert containers.read(created.id, created.outs).outs["status"] == "running"
            containers.delete(created.id, created.outs)
            assert containers.read(created.id, created.outs).id == ""
            containers.delete(created.id, created.outs)  # already gone: fine
        finally:
            networks.delete(network.id, network.outs)
        assert networks.read(network.id, network.outs).id == ""

    def test_a_container_that_exits_is_removed_and_its_log_is_in_the_error(self, client):
        containers = ContainerProvider()
        with pytest.raises(ContainerFailed) as err:
            containers.create(containers.check({}, prometheus("scrape_configs: [\n")).inputs)
        message = str(err.value)
        assert "did not come up" in message and "exited with code" in message
        assert "Error loading config" in message
        assert ours(client) == []

    def test_a_missing_image_says_where_images_come_from(self):
        containers = ContainerProvider()
        with pytest.raises(ContainerFailed, match="make bootstrap"):
            containers.create(containers.check({}, {**prometheus("{}"), "image": "modelship/absent:0"}).inputs)
