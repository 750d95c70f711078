"""End to end: the model server's image and Debian's Prometheus (`modelship/prometheus:2`) as containers on
one Docker network, configured by `monitoring.render` with short windows. Traffic like the training data
leaves every alert silent; traffic with shifted inputs drives the drift alerts to firing in Prometheus's
`/api/v1/alerts`.

Real parts only: a small model trained by model/, its image built from app/Dockerfile the way
infra/image.py assembles the context, the serving container spec of infra/container.py.
"""
from __future__ import annotations

import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import httpx
import numpy as np
import pytest

from infra.config import WorkloadConfig
from infra.container import container_spec, docker_run_kwargs
from infra.image import ROOT, app_hash, build_context, image_tag
from monitoring import Alerting, Drift, MonitoringSpec, Slo, StaticTargets, Timing, render

PROMETHEUS_IMAGE = os.environ.get("MODELSHIP_PROMETHEUS_IMAGE", "modelship/prometheus:2")
ALERTMANAGER_IMAGE = os.environ.get("MODELSHIP_ALERTMANAGER_IMAGE", "modelship/alertmanager:0")
BASE_IMAGE = os.environ.get("BASE_IMAGE", "modelship/python-base:3.11")
PREFIX = f"modelship-e2e-{os.getpid()}"
DRIFT_ALERTS = {"ModelInputDrift", "ModelPredictionDrift"}
DRIFT_WINDOW_S = 15
ROWS_PER_REQUEST = 16


def docker_client():
    import docker

    try:
        client = docker.from_env()
        client.ping()
    except Exception as err:  # noqa: BLE001 - any failure to reach the engine means the same thing here
        pytest.fail(f"no Docker engine answers ({err}): run `make bootstrap`, which starts one", pytrace=False)
    return client


def require_image(client, name: str) -> None:
    import docker

    try:
        client.images.get(name)
    except docker.errors.ImageNotFound:
        pytest.fail(f"image {name} is missing: run `make bootstrap` (toolchain/images.sh builds it)", pytrace=False)


@pytest.fixture(scope="module")
def client():
    return docker_client()


@pytest.fixture(scope="module")
def entry(tmp_path_factory) -> Path:
    """A store entry from the real producer, trained small."""
    from model import Store, trained_entry
    from model.config import load

    config = load(None, {"epochs": 5, "export": {"int8": False}}).train
    return Path(trained_entry(config, Store(tmp_path_factory.mktemp("store"))))


@pytest.fixture(scope="module")
def server_image(client, entry, tmp_path_factory) -> str:
    """The serving image for `entry`, built as infra/image.py builds it (context, no network); reused by tag."""
    import docker

    require_image(client, BASE_IMAGE)
    tag = image_tag(entry.name, app_hash(ROOT / "app"))
    name = f"modelship-e2e/server:{tag}"
    try:
        client.images.get(name)
        return name
    except docker.errors.ImageNotFound:
        pass
    # One cached image at a time: older ones were for a model/ or app/ that no longer exists.
    for old in client.images.list(name="modelship-e2e/server"):
        client.images.remove(old.id, force=True)
    context = build_context(tag, entry, ROOT / "app", tmp_path_factory.mktemp("build"))
    client.images.build(path=str(context), tag=name, buildargs={"BASE_IMAGE": BASE_IMAGE}, network_mode="none", rm=True)
    return name


@pytest.fixture(scope="module")
def network(client) -> Iterator[str]:
    net = client.networks.create(f"{PREFIX}-net", driver="bridge")
    yield net.name
    net.remove()


def _published(container, port: int) -> str:
    container.reload()
    binding = container.attrs["NetworkSettings"]["Ports"][f"{port}/tcp"][0]
    return f"http://127.0.0.1:{binding['HostPort']}"


def _wait(url: str, what: str, container, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        container.reload()
        if container.status == "exited":
            break
        time.sleep(0.5)
    pytest.fail(f"{what} not ready at {url} within {timeout} s; its log:\n{container.logs().decode()[-3000:]}", pytrace=False)


@pytest.fixture(scope="module")
def model(client, server_image, network) -> Iterator[str]:
    """The serving container as infra/container.py specifies it, on the network as `<PREFIX>-model`."""
    spec = container_spec(server_image, WorkloadConfig(host_port=None), labels={})
    kwargs = docker_run_kwargs(spec)
    kwargs["ports"] = {f"{spec.internal_port}/tcp": ("127.0.0.1", None)}
    container = client.containers.run(**kwargs, name=f"{PREFIX}-model", network=network)
    try:
        url = _published(container, spec.internal_port)
        _wait(f"{url}/v2/health/ready", "model server", container)
        yield url
    finally:
        container.remove(force=True)


def e2e_spec(model_id: str) -> MonitoringSpec:
    return MonitoringSpec(
        environment="e2e",
        expected_model_id=model_id,
        targets=StaticTargets(addresses=[f"{PREFIX}-model:8080"]),
        # Generous latency: this checks drift, and the machine is shared with builds.
        slo=Slo(availability=0.99, latency_p99_seconds=2.0),
        drift=Drift(window=f"{DRIFT_WINDOW_S}s", min_rows=200),
        alerting=Alerting(alertmanagers=[f"{PREFIX}-alertmanager:9093"], group_wait="1s"),
        timing=Timing(scrape_interval="1s", evaluation_interval="1s", window="10s", pending="2s", down_pending="5s",
                      drift_pending="2s"),
    )


def _config_dir(tmp_path_factory, name: str, files: dict[str, str]) -> Path:
    directory = tmp_path_factory.mktemp(name)
    # The images run as nobody: the mounted config must be readable by anyone.
    directory.chmod(0o755)
    for file_name, text in files.items():
        (directory / file_name).write_text(text)
        (directory / file_name).chmod(0o644)
    return directory


@contextmanager
def _monitoring(client, network: str, image: str, name: str, port: int, config: Path, mount: str) -> Iterator[str]:
    """A monitoring container on the test network, its config mounted read-only; yields its URL once ready."""
    require_image(client, image)
    container = client.containers.run(
        image,
        name=f"{PREFIX}-{name}",
        network=network,
        volumes={str(config): {"bind": mount, "mode": "ro"}},
        ports={f"{port}/tcp": ("127.0.0.1", None)},
        detach=True,
    )
    try:
        url = _published(container, port)
        _wait(f"{url}/-/ready", name.capitalize(), container)
        yield url
    finally:
        container.remove(force=True)


@pytest.fixture(scope="module")
def bundle(entry):
    return render(e2e_spec(entry.name))


@pytest.fixture(scope="module")
def alertmanager(client, network, bundle, tmp_path_factory) -> Iterator[str]:
    config = _config_dir(tmp_path_factory, "alertmanager", {"alertmanager.yml": bundle.alertmanager})
    with _monitoring(client, network, ALERTMANAGER_IMAGE, "alertmanager", 9093, config, "/etc/alertmanager") as url:
        yield url


@pytest.fixture(scope="module")
def prometheus(client, network, model, alertmanager, bundle, tmp_path_factory) -> Iterator[str]:
    files = bundle.files()
    config = _config_dir(tmp_path_factory, "prometheus", {k: files[k] for k in ("prometheus.yml", "rules.yml")})
    with _monitoring(client, network, PROMETHEUS_IMAGE, "prometheus", 9090, config, "/etc/prometheus") as url:
        yield url


def alerts(prometheus: str) -> list[dict]:
    body = httpx.get(f"{prometheus}/api/v1/alerts", timeout=5).json()
    assert body["status"] == "success", body
    return body["data"]["alerts"]


def query(prometheus: str, expr: str) -> list[dict]:
    body = httpx.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=5).json()
    assert body["status"] == "success", body
    return body["data"]["result"]


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    from sklearn.datasets import load_digits

    return load_digits().data.astype(np.float32)


def send(model: str, rows: np.ndarray, seconds: float, every: Callable[[], bool] = lambda: False) -> int:
    """Inference requests of ROWS_PER_REQUEST random rows, ~20 a second, for `seconds` or until `every`
    (called once a second) returns True."""
    rng = np.random.default_rng(0)
    sent, next_check = 0, time.monotonic() + 1
    deadline = time.monotonic() + seconds
    with httpx.Client(base_url=model, timeout=10) as http:
        while time.monotonic() < deadline:
            batch = rows[rng.integers(0, len(rows), ROWS_PER_REQUEST)]
            body = {"inputs": [{"name": "input", "shape": list(batch.shape), "datatype": "FP32", "data": batch.ravel().tolist()}]}
            response = http.post("/v2/models/model/infer", json=body)
            assert response.status_code == 200, response.text
            sent += 1
            if time.monotonic() >= next_check:
                if every():
                    break
                next_check += 1
            time.sleep(0.05)
    return sent


def test_traffic_like_training_leaves_every_alert_silent(model, prometheus, digits):
    seen: list[dict] = []
    send(model, digits, DRIFT_WINDOW_S + 5, every=lambda: seen.extend(alerts(prometheus)) or False)
    # Not vacuous: the rules saw enough rows and computed both drift indices.
    rows = query(prometheus, "job:modelship_input_rows:increase")
    assert rows and float(rows[0]["value"][1]) >= 200, rows
    psi = query(prometheus, "job:modelship_prediction_psi:window")
    shift = query(prometheus, "job:modelship_input_shift:max_z")
    assert psi and shift, (psi, shift)
    print(f"normal traffic: rows {rows[0]['value'][1]}, psi {psi[0]['value'][1]}, max z {shift[0]['value'][1]}")
    assert not seen, f"alerts on normal traffic (psi {psi[0]['value'][1]}, max z {shift[0]['value'][1]}): {seen}"


def test_shifted_inputs_fire_both_drift_alerts(model, prometheus, alertmanager, digits):
    inverted = 16.0 - digits  # white on black: every pixel's mean moves, and so do the predictions
    state: dict[str, dict] = {}

    def look() -> bool:
        for alert in alerts(prometheus):
            state[alert["labels"]["alertname"]] = alert
        return all(state.get(name, {}).get("state") == "firing" for name in DRIFT_ALERTS)

    send(model, inverted, 2 * DRIFT_WINDOW_S, every=look)
    firing = {name for name, a in state.items() if a["state"] == "firing"}
    assert DRIFT_ALERTS <= firing, f"drift alerts not firing: {state}"
    assert firing <= DRIFT_ALERTS, f"unexpected alerts: {firing - DRIFT_ALERTS}"
    drift = state["ModelInputDrift"]
    assert drift["labels"]["severity"] == "warning" and drift["labels"]["environment"] == "e2e"
    assert drift["labels"]["feature"].isdigit()
    assert f"feature {drift['labels']['feature']}" in drift["annotations"]["description"]
    assert float(drift["value"]) > 3.0
    assert float(state["ModelPredictionDrift"]["value"]) > 0.2

    # Prometheus handed them on to Alertmanager, which routes them to the stack's receiver.
    deadline = time.monotonic() + 15
    received: set[str] = set()
    while time.monotonic() < deadline and not DRIFT_ALERTS <= received:
        received = {a["labels"]["alertname"] for a in httpx.get(f"{alertmanager}/api/v2/alerts", timeout=5).json()}
        time.sleep(0.5)
    assert DRIFT_ALERTS <= received, f"Alertmanager has {received}"
