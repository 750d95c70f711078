"""End to end: the model server's image, Debian's Prometheus (`modelship/prometheus:2`) and Alertmanager as
containers on one Docker network, configured by `monitoring.render` with short windows, for a model of each
kind of prediction drift: the default digits classifier, and the diabetes regression example (its features
are centred, so half of every input value is negative). Traffic like the training data leaves every alert
silent; traffic with shifted inputs drives both drift alerts to firing in Prometheus's `/api/v1/alerts`, and
on to Alertmanager.

Real parts only: a small model trained by model/, its image built from app/Dockerfile the way
infra/image.py assembles the context, the serving container spec of infra/container.py.
"""
from __future__ import annotations

import os
import re
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import numpy as np
import pytest

from infra.config import WorkloadConfig
from infra.container import container_spec, docker_run_kwargs
from infra.image import ROOT, app_hash, build_context, image_tag
from monitoring import Alerting, Drift, MonitoringSpec, Slo, StaticTargets, Timing, render
from monitoring.rules import FEATURE_BINS, MAX_FEATURE_PSI, PSI, ROWS, predictions

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


def _digits() -> np.ndarray:
    from sklearn.datasets import load_digits

    return load_digits().data


def _diabetes() -> np.ndarray:
    from sklearn.datasets import load_diabetes

    return load_diabetes().data


@dataclass(frozen=True)
class Example:
    """A model to serve, traffic like its training data, and how that traffic is made to drift."""

    config: Path | None  # training config file; None: the default (the digits MLP)
    rows: Callable[[], np.ndarray]
    drift: Callable[[np.ndarray], np.ndarray]
    overrides: dict[str, Any] = field(default_factory=dict)


EXAMPLES = {
    # White on black: every pixel's bins move, and so do the predicted classes.
    "digits": Example(None, _digits, lambda x: 16.0 - x, {"epochs": 5}),
    # Every feature about two training std lower, mostly negative values: the predicted score falls out of
    # its training quantile bins.
    "diabetes": Example(ROOT / "examples" / "diabetes" / "train.yaml", _diabetes, lambda x: x - 0.1, {"epochs": 20}),
}


@pytest.fixture(scope="module", params=sorted(EXAMPLES))
def example(request) -> tuple[str, Example]:
    return request.param, EXAMPLES[request.param]


@pytest.fixture(scope="module")
def entry(example, tmp_path_factory):
    """A store entry from the real producer, trained small."""
    from model import Store, trained_entry
    from model.config import load

    _, ex = example
    config = load(ex.config, {**ex.overrides, "export": {"int8": False}}).train
    return trained_entry(config, Store(tmp_path_factory.mktemp("store")))


@pytest.fixture(scope="module")
def server_image(client, example, entry, tmp_path_factory) -> str:
    """The serving image for `entry`, built as infra/image.py builds it (context, no network); reused by tag."""
    import docker

    require_image(client, BASE_IMAGE)
    tag = image_tag(entry.path.name, app_hash(ROOT / "app"))
    repository = f"modelship-e2e/{example[0]}"
    name = f"{repository}:{tag}"
    try:
        client.images.get(name)
        return name
    except docker.errors.ImageNotFound:
        pass
    # One cached image per example: older ones were for a model/ or app/ that no longer exists.
    for old in client.images.list(name=repository):
        client.images.remove(old.id, force=True)
    context = build_context(tag, entry.path, ROOT / "app", tmp_path_factory.mktemp("build"))
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


def e2e_spec(model_id: str, task: str) -> MonitoringSpec:
    return MonitoringSpec(
        environment="e2e",
        expected_model_id=model_id,
        task=task,
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
def spec(entry) -> MonitoringSpec:
    return e2e_spec(entry.path.name, entry.report.task)


@pytest.fixture(scope="module")
def bundle(spec):
    return render(spec)


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


def send(model: str, entry, rows: np.ndarray, seconds: float, every: Callable[[], bool] = lambda: False) -> int:
    """V2 inference requests of ROWS_PER_REQUEST random rows under the model's own input name, ~20 a second,
    for `seconds` or until `every` (called once a second) returns True."""
    input_name = entry.report.signature.input.name
    rows = rows.astype(np.float32)
    rng = np.random.default_rng(0)
    sent, next_check = 0, time.monotonic() + 1
    deadline = time.monotonic() + seconds
    with httpx.Client(base_url=model, timeout=10) as http:
        while time.monotonic() < deadline:
            batch = rows[rng.integers(0, len(rows), ROWS_PER_REQUEST)]
            body = {"inputs": [{"name": input_name, "shape": list(batch.shape), "datatype": "FP32", "data": batch.ravel().tolist()}]}
            response = http.post("/v2/models/model/infer", json=body)
            assert response.status_code == 200, response.text
            sent += 1
            if time.monotonic() >= next_check:
                if every():
                    break
                next_check += 1
            time.sleep(0.05)
    return sent


def value(prometheus: str, expr: str) -> float:
    result = query(prometheus, expr)
    assert len(result) == 1, f"{expr}: {result}"
    return float(result[0]["value"][1])


def test_traffic_like_training_leaves_every_alert_silent(example, entry, model, prometheus):
    shown, ex = example
    seen: list[dict] = []
    send(model, entry, ex.rows(), DRIFT_WINDOW_S + 5, every=lambda: seen.extend(alerts(prometheus)) or False)
    # Not vacuous: the rules saw enough rows and computed both drift indices.
    rows, psi, input_psi = value(prometheus, ROWS), value(prometheus, PSI), value(prometheus, MAX_FEATURE_PSI)
    assert rows >= 200
    print(f"{shown}, normal traffic: rows {rows:.0f}, prediction psi {psi:.4f}, max input psi {input_psi:.4f}")
    assert not seen, f"alerts on normal traffic (prediction psi {psi}, max input psi {input_psi}): {seen}"


def test_shifted_inputs_fire_both_drift_alerts(example, entry, spec, model, prometheus, alertmanager):
    shown, ex = example
    state: dict[str, dict] = {}

    def look() -> bool:
        for alert in alerts(prometheus):
            state[alert["labels"]["alertname"]] = alert
        return all(state.get(name, {}).get("state") == "firing" for name in DRIFT_ALERTS)

    send(model, entry, ex.drift(ex.rows()), 2 * DRIFT_WINDOW_S, every=look)
    firing = {name for name, a in state.items() if a["state"] == "firing"}
    assert DRIFT_ALERTS <= firing, f"drift alerts not firing: {state}"
    assert firing <= DRIFT_ALERTS, f"unexpected alerts: {firing - DRIFT_ALERTS}"
    drift = state["ModelInputDrift"]
    assert drift["labels"]["severity"] == "warning" and drift["labels"]["environment"] == "e2e"
    # The named feature is one the report monitors, and the alert says so.
    monitored = {str(f.index) for f in entry.report.reference.features}
    assert drift["labels"]["feature"] in monitored, (drift["labels"], monitored)
    assert f"feature {drift['labels']['feature']}" in drift["annotations"]["description"]
    assert float(drift["value"]) > spec.drift.input_psi
    assert float(state["ModelPredictionDrift"]["value"]) > spec.drift.prediction_psi
    print(f"{shown}, shifted traffic: input psi {float(drift['value']):.2f} (feature {drift['labels']['feature']}), "
          f"prediction psi {float(state['ModelPredictionDrift']['value']):.2f}")

    # Prometheus handed them on to Alertmanager, which routes them to the stack's receiver.
    deadline = time.monotonic() + 15
    received: set[str] = set()
    while time.monotonic() < deadline and not DRIFT_ALERTS <= received:
        received = {a["labels"]["alertname"] for a in httpx.get(f"{alertmanager}/api/v2/alerts", timeout=5).json()}
        time.sleep(0.5)
    assert DRIFT_ALERTS <= received, f"Alertmanager has {received}"


def _series(metrics_text: str, metric: str) -> int:
    return len(re.findall(rf"^{re.escape(metric)}\{{", metrics_text, flags=re.M))


def test_drift_series_per_pod_are_bounded_by_the_report(example, entry, spec, model):
    """The server's drift series follow the report's monitored features and bins, not the input's width."""
    shown, _ = example
    reference = entry.report.reference
    config = entry.report.config.monitor
    text = httpx.get(f"{model}/metrics", timeout=5).text
    bins = sum(len(f.ratios) for f in reference.features)
    counted = predictions(spec)
    live_inputs, reference_inputs = _series(text, FEATURE_BINS.counter), _series(text, FEATURE_BINS.reference)
    live_predictions, reference_predictions = _series(text, counted.counter), _series(text, counted.reference)
    assert reference_inputs == bins and 0 < live_inputs <= bins
    assert len(reference.features) == min(config.features, entry.report.data.n_features)
    expected_predictions = len(reference.prediction.ratios) if reference.prediction else len(reference.class_distribution)
    assert reference_predictions == expected_predictions and 0 < live_predictions <= expected_predictions
    total = live_inputs + reference_inputs + live_predictions + reference_predictions + 1  # + input rows
    bound = 2 * config.features * config.bins + 2 * expected_predictions + 1
    print(f"{shown}: {entry.report.data.n_features} inputs, {len(reference.features)} monitored features, {bins} bins: "
          f"{total} drift series per pod (bound {bound})")
    assert total <= bound
