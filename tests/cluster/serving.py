"""What the cluster's serving tests need: real server images of real models, and real load from the host.

`server_images` trains small digits models with model/, builds each into app/Dockerfile's image the way
infra/image.py does (hermetic build, the gate's labels), pushes it to a registry the nodes pull from and pins
it by digest, as a promotion would. `LoadLoop` sends V2 inference requests to an endpoint from the host, each
on a new connection (so the Service spreads them over every ready pod), at a paced rate or flat out, and
counts what came back: which model answered (by its output for the fixed input) and every failure.
"""
from __future__ import annotations

import http.client
import json
import subprocess
import threading
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import pytest

from tests.cluster.kube import ROOT

BASE_IMAGE = "modelship/python-base:3.11"
REPOSITORY = "modelship-k8s-test/server"
GATE = {"accuracy": 0.5, "f1_macro": 0.5}
# A handwritten 0 of the digits set (README, step 2).
DIGIT = [0, 0, 5, 13, 9, 1, 0, 0, 0, 0, 13, 15, 10, 15, 5, 0, 0, 3, 15, 2, 0, 11, 8, 0, 0, 4, 12, 0, 0, 8, 8, 0, 0, 5, 8, 0,
         0, 9, 8, 0, 0, 4, 11, 0, 1, 12, 7, 0, 0, 2, 14, 5, 10, 12, 0, 0, 0, 0, 6, 13, 10, 0, 0, 0]
BODY = json.dumps({"inputs": [{"name": "features", "shape": [1, 64], "datatype": "FP32", "data": DIGIT}]}).encode()


@dataclass(frozen=True)
class ServerImage:
    ref: str  # <registry>/<repository>:<tag>@sha256:...
    model_id: str
    metrics: dict[str, float]


def _docker(*args: str) -> str:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        pytest.fail(f"docker {' '.join(args[:3])} ... failed ({done.returncode}):\n{done.stderr[-3000:]}", pytrace=False)
    return done.stdout.strip()


def server_image(registry: str, epochs: int, store: Path, build_root: Path) -> ServerImage:
    """The digits MLP trained for `epochs` (model/), built, gated, pushed to `registry` and pinned by digest."""
    from infra.image import app_hash, build_context, gate_build_args, image_tag
    from model import Store, trained_entry
    from model.config import load
    from model.gate import evaluate

    entry = Path(trained_entry(load(None, {"epochs": epochs, "search": [], "export": {"int8": False}}).train, Store(store)))
    report = json.loads((entry / "report.json").read_text())
    model_id = report["model_id"]
    measured = report["metrics"][report["serving_format"]]
    metrics = {name: measured[name] for name in GATE}
    gate = evaluate(model_id, metrics, GATE)
    assert gate.passed, f"the {epochs}-epoch test model fails the test stack's gate: {gate.summary}"
    tag = image_tag(model_id, app_hash(ROOT / "app"))
    context = build_context(tag, entry, ROOT / "app", build_root)
    name = f"{registry}/{REPOSITORY}:{tag}"
    build_args = {"BASE_IMAGE": BASE_IMAGE, "IMAGE_VERSION": tag, **gate_build_args(model_id, gate.to_labels())}
    _docker("build", "--network", "none", "-q", "-t", name, *[f"--build-arg={k}={v}" for k, v in build_args.items()],
            *[f"--label={k}={v}" for k, v in gate.to_labels().items()], str(context))
    _docker("push", "-q", name)
    (digest,) = [d.split("@", 1)[1] for d in json.loads(_docker("image", "inspect", "-f", "{{json .RepoDigests}}", name))
                 if d.startswith(f"{registry}/{REPOSITORY}@")]
    # By id: the pushed image keeps a repo@digest name once its tag is gone. The registry holds it from here on.
    _docker("rmi", _docker("image", "inspect", "-f", "{{.Id}}", name))
    return ServerImage(f"{name}@{digest}", model_id, metrics)


def infer(endpoint: str, token: Optional[str], timeout: float = 10) -> list[float]:
    """One V2 inference of DIGIT on a new connection: the output, or an exception saying what failed."""
    url = urllib.parse.urlsplit(endpoint)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=timeout)
    headers = {"Content-Type": "application/json", "Connection": "close"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        connection.request("POST", "/v2/models/model/infer", BODY, headers)
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    if response.status != 200:
        raise RuntimeError(f"HTTP {response.status}: {body[:200]!r}")
    return json.loads(body)["outputs"][0]["data"]


def metrics_text(endpoint: str) -> str:
    url = urllib.parse.urlsplit(endpoint)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    try:
        connection.request("GET", "/metrics", headers={"Connection": "close"})
        return connection.getresponse().read().decode()
    finally:
        connection.close()


def answer_key(output: list[float]) -> tuple[float, ...]:
    """An answer as comparable data: the same model gives the same probabilities for the same input."""
    return tuple(round(p, 4) for p in output)


@dataclass
class LoadLoop:
    """Threads sending DIGIT to `endpoint` until stopped (or `max_seconds`), `rate` requests/s in all (None: as
    fast as they can). `answers` counts outputs by `answer_key`; `failures` keeps each failure's text."""

    endpoint: str
    token: Optional[str]
    rate: Optional[float] = 250.0
    # Enough that a slow answer (one pod left mid-drain) does not hold the rate down.
    threads: int = 24
    max_seconds: float = 300.0
    answers: Counter = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    started: float = 0.0
    seconds: float = 0.0

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._workers = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(self.threads)]

    @property
    def served(self) -> int:
        return sum(self.answers.values())

    def steady_rate(self, seconds: float = 5.0) -> float:
        """Waits `seconds` and returns the rate the loop kept meanwhile: the load going into a fault."""
        before, begun = self.served + len(self.failures), time.monotonic()
        time.sleep(seconds)
        return (self.served + len(self.failures) - before) / (time.monotonic() - begun)

    @property
    def per_second(self) -> float:
        return (self.served + len(self.failures)) / self.seconds if self.seconds else 0.0

    def _run(self, index: int) -> None:
        interval = self.threads / self.rate if self.rate else 0.0
        due = self.started + index * interval / self.threads
        deadline = self.started + self.max_seconds
        while not self._stop.is_set() and time.monotonic() < deadline:
            if interval:
                due += interval
                pause = due - time.monotonic()
                if pause > 0:
                    self._stop.wait(pause)
            try:
                key, failure = answer_key(infer(self.endpoint, self.token)), None
            except Exception as err:  # every failure is counted, whatever it is
                key, failure = None, f"{time.monotonic() - self.started:.2f}s {type(err).__name__}: {err}"
            with self._lock:
                if failure is None:
                    self.answers[key] += 1
                else:
                    self.failures.append(failure)

    def __enter__(self) -> LoadLoop:
        self.started = time.monotonic()
        for worker in self._workers:
            worker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join()
        self.seconds = time.monotonic() - self.started

    def summary(self) -> str:
        return (f"{self.served} served, {len(self.failures)} failed in {self.seconds:.1f}s ({self.per_second:.0f} req/s)"
                + (f"; first failures: {self.failures[:5]}" if self.failures else ""))
