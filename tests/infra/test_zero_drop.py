"""Model updates on the Docker target drop no request: the real engine, two server replicas behind the reverse
proxy, and a constant load on 127.0.0.1 (8 threads, 400 req/s offered, keep-alive) across each `up`.

- a model update: 0 failed requests, every answer from the old or the new model, the new one serving at the end,
  the replicas replaced slot by slot (the second new container made once the first is healthy);
- an update whose containers never get healthy: the `up` fails, 0 failed requests, the old model answers;
- the proxy's exporter reaches the stack's Prometheus; the bearer token is enforced through the proxy;
- `refresh` after a server container is removed by hand shows the drift, `up` repairs it.

One stack (`proxy-zd`, ports 21080/21000/21090/21093), shared by the tests in file order; its containers,
networks and the images its builds tagged are removed at the end.
"""
from __future__ import annotations

import time

import docker
import httpx
import pytest
from pulumi import automation as auto

from tests.infra.engine import ROOT, EngineStack, engine_stack, missing_toolchain, remove_registry_images
from tests.load import BODY, PATH, Load, answer_of

STACK = "proxy-zd"
HOST_PORT, REGISTRY_PORT, PROMETHEUS_PORT, ALERTMANAGER_PORT = 21080, 21000, 21090, 21093
TOKEN = "zero-drop-token"
# Quick models, kept in the repository's store across runs (content-addressed: a rerun trains nothing).
STORE = str(ROOT / ".modelship" / "store")
OLD, NEW = {"epochs": 2, "search": []}, {"epochs": 3, "search": []}
RATE, THREADS = 400.0, 8


def config(model: dict = OLD, **workload) -> dict:
    return {
        "target": "docker",
        "model": {"overrides": model, "storeDir": STORE},
        "gate": {"thresholds": {"accuracy": 0.8}},
        "registry": {"kind": "local", "port": REGISTRY_PORT},
        "workload": {"hostPort": HOST_PORT, "replicas": 2, "readyTimeoutSeconds": 30, **workload},
        "monitoring": {"prometheusPort": PROMETHEUS_PORT, "alertmanagerPort": ALERTMANAGER_PORT},
    }


@pytest.fixture(scope="module")
def client() -> docker.DockerClient:
    return docker.from_env()


@pytest.fixture(scope="module")
def zd(tmp_path_factory, client) -> EngineStack:
    missing = missing_toolchain()
    if missing:
        pytest.fail("real-engine tests need: " + "; ".join(missing), pytrace=False)
    es = engine_stack(tmp_path_factory.mktemp("zero-drop"), STACK)
    write(es, config())
    yield es
    try:
        es.stack.destroy(on_output=print)
        es.stack.workspace.remove_stack(STACK)
    finally:
        # What the stack's builds tagged for its registry stays in the Engine's store otherwise.
        remove_registry_images(client, REGISTRY_PORT)


def write(es: EngineStack, sections: dict) -> None:
    """The stack file, with the bearer token stored encrypted (the program refuses it in plain text)."""
    es.write_config(sections)
    es.stack.set_config("modelship:workload.authToken", auto.ConfigValue(TOKEN, secret=True), path=True)


def prepare(es: EngineStack) -> None:
    """Trains, gates, builds and pushes the new model's image first (an `up` targeting the image), so that the load
    spans the rollout itself, not minutes of training and building that starve every process of CPU on a small
    machine."""
    urn = f"urn:pulumi:{STACK}::modelship::modelship:infra:ModelImage$docker-build:index:Image::image"
    es.stack.up(target=[urn], on_output=print)


def servers(client: docker.DockerClient) -> list:
    """The stack's model server containers, oldest first."""
    label = f"ai.modelship.stack=modelship/{STACK}"
    found = [c for c in client.containers.list(all=True, filters={"label": label}) if "ai.modelship.model_id" in c.labels]
    return sorted(found, key=lambda c: c.attrs["Created"])


def endpoint(zd: EngineStack) -> str:
    return zd.stack.outputs()["endpoint"].value


def test_up_serves_through_the_proxy_with_the_token(zd, client):
    zd.stack.up(on_output=print)
    url = endpoint(zd)
    assert url == f"http://127.0.0.1:{HOST_PORT}"
    running = servers(client)
    assert len(running) == 2 and all(c.status == "running" for c in running)
    # The servers publish nothing; the proxy owns the host port.
    assert all(not c.attrs["HostConfig"]["PortBindings"] for c in running)
    (proxy,) = [c for c in client.containers.list(filters={"label": f"ai.modelship.stack=modelship/{STACK}"})
                if c.name.startswith("server-proxy")]
    assert proxy.attrs["HostConfig"]["PortBindings"] == {"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(HOST_PORT)}]}
    # The bearer token, end to end through the proxy.
    refused = httpx.post(url + PATH, content=BODY, headers={"Content-Type": "application/json"}, timeout=10)
    assert refused.status_code == 401
    answer_of(url, TOKEN)
    # Both replicas take requests (leastconn over the two).
    with Load(url, TOKEN, rate=100, threads=4):
        time.sleep(2)
    served = [c.exec_run(["python", "-c", "import urllib.request as u; print(u.urlopen('http://127.0.0.1:8080/metrics').read().decode())"])
              for c in running]
    for result in served:
        assert 'modelship_requests_total{method="POST",route="/v2/models/{name}/infer",status="200"}' in result.output.decode()


def test_the_proxy_metrics_reach_prometheus(zd):
    prometheus = zd.stack.outputs()["prometheusUrl"].value

    def value(query: str) -> float:
        result = httpx.get(f"{prometheus}/api/v1/query", params={"query": query}, timeout=10).json()["data"]["result"]
        return float(result[0]["value"][1]) if result else 0.0

    # The proxy's exporter says both servers are up; each replica is a scrape target of its own (DNS discovery).
    proxy = 'haproxy_backend_active_servers{job="modelship-proxy",proxy="servers"}'
    replicas = 'count(up{job="modelship"} == 1)'
    deadline = time.monotonic() + 60
    while (value(proxy), value(replicas)) != (2, 2):
        assert time.monotonic() < deadline, f"after 60 s: {proxy} = {value(proxy)}, {replicas} = {value(replicas)}"
        time.sleep(2)


def test_model_update_under_load_drops_nothing(zd, client):
    url = endpoint(zd)
    old = answer_of(url, TOKEN)
    before = {c.id for c in servers(client)}
    write(zd, config(NEW))
    prepare(zd)
    started = time.time()
    with Load(url, TOKEN, rate=RATE, threads=THREADS) as load:
        time.sleep(1)
        zd.stack.up(on_output=print)
        time.sleep(2)
    tally = load.tally
    new = answer_of(url, TOKEN)
    assert new != old
    # The load was on when it mattered: around each old container's stop (SIGTERM, then its removal).
    stops = stopped_at(client, before, started)
    around = [tally.rate_around(moment) for moment in stops]
    print(f"model update: {tally.summary()}; req/s around each old container's stop: {[round(r) for r in around]}")
    assert len(stops) == 2 and min(around) >= 200, around
    assert tally.dropped == 0, tally.summary()
    assert set(tally.answers) <= {old, new} and tally.answers[new] > 0, tally.answers
    after = servers(client)
    assert len(after) == 2 and not before & {c.id for c in after}
    # Slot by slot: the second new container was made once the first was healthy (its check runs every 5 s).
    first, second = (c.attrs["Created"] for c in after)
    assert _seconds(second) - _seconds(first) >= 4, (first, second)


def test_update_whose_containers_never_get_healthy_fails_and_drops_nothing(zd, client):
    url = endpoint(zd)
    serving = answer_of(url, TOKEN)
    running = {c.id for c in servers(client)}
    # A new model in 8 MiB: its containers cannot start, so they never get healthy.
    write(zd, config(OLD, memory="8Mi"))
    prepare(zd)
    started = time.time()
    try:
        with Load(url, TOKEN, rate=RATE, threads=THREADS) as load:
            time.sleep(1)
            with pytest.raises(auto.CommandError, match="did not come up"):
                zd.stack.up(on_output=print)
            time.sleep(2)
    finally:
        write(zd, config(NEW))
    tally = load.tally
    # The load was on when it mattered: while the failing container was started (each of its restarts).
    starts = started_at(client, running, started)
    around = [tally.rate_around(moment) for moment in starts]
    print(f"failed update: {tally.summary()}; req/s around each start of the failing container: {[round(r) for r in around]}")
    assert starts and min(around) >= 200, around
    assert tally.dropped == 0, tally.summary()
    assert set(tally.answers) == {serving}, tally.answers
    # Both old containers still run: the failure stopped the rollout at its first slot.
    assert running <= {c.id for c in servers(client) if c.status == "running"}
    assert answer_of(url, TOKEN) == serving
    # The next up with the config restored removes the failed container and converges.
    zd.stack.up(on_output=print)
    assert zd.changes()[0] == {}
    assert answer_of(url, TOKEN) == serving


def test_refresh_shows_a_server_removed_by_hand_and_up_repairs_it(zd, client):
    gone = servers(client)[0]
    gone.remove(force=True)
    result = zd.stack.refresh(on_output=print)
    assert result.summary.resource_changes.get("delete") == 1, result.summary.resource_changes
    steps, _ = zd.changes()
    assert list(steps.values()) == ["create"], steps
    zd.stack.up(on_output=print)
    assert len([c for c in servers(client) if c.status == "running"]) == 2
    assert zd.changes()[0] == {}
    answer_of(endpoint(zd), TOKEN)


def _events(client: docker.DockerClient, since: float, action: str) -> list[dict]:
    label = f"ai.modelship.stack=modelship/{STACK}"
    return list(client.events(since=int(since), until=int(time.time()) + 1, decode=True,
                              filters={"type": "container", "event": action, "label": label}))


def stopped_at(client: docker.DockerClient, ids: set[str], since: float) -> list[float]:
    """When each of the containers `ids` was told to stop (their SIGTERM), wall clock."""
    return [e["timeNano"] / 1e9 for e in _events(client, since, "kill") if e["id"] in ids]


def started_at(client: docker.DockerClient, others: set[str], since: float) -> list[float]:
    """When a server container other than `others` started (each start of a restarting one), wall clock."""
    return [e["timeNano"] / 1e9 for e in _events(client, since, "start")
            if e["id"] not in others and "ai.modelship.model_id" in e["Actor"]["Attributes"]]


def _seconds(created: str) -> float:
    """Docker's `Created` (RFC 3339 with nanoseconds) in seconds since the epoch."""
    from datetime import datetime

    stamp, fraction = created.rstrip("Z").split(".")
    return datetime.fromisoformat(stamp + "+00:00").timestamp() + float("0." + fraction)
